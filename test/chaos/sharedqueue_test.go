package chaos

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/pipeline"
)

// Scenario 10: two ledgers sharing a queue (issue 10.5). Two services with
// their own ledgers (two Firestore collections: two namespaces) enqueue into
// one Cloud Tasks emulator queue and run the same pipeline for the same keys,
// at the same time, with a share of their enqueues' replies lost (the task
// exists, the call is retried under the same name). Task names carry the
// ledger's namespace, so neither service's tasks collapse into the other's:
// both runs of every key finish, each body once per service. gcp only: on
// the local backend the queue lives in the service's own store and cannot be
// shared.
func TestTwoLedgersShareAQueue(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, true) {
		if backend != "gcp" {
			continue // the local queue is the service's own
		}
		t.Run(backend, func(t *testing.T) { twoLedgersShareAQueue(t, sz) })
	}
}

func twoLedgersShareAQueue(t *testing.T, sz size) {
	d := newDice(sz.faultShare/3, uint64(time.Now().UnixNano()))
	var (
		mu  sync.Mutex
		fqs []*faultyQueue
	)
	wrap := app.Wrappers{Queue: func(q pipeline.Queue) pipeline.Queue {
		// Only lost replies: the task exists and the retry reuses its name,
		// which is where a name shared by both services would collapse them.
		fq := &faultyQueue{inner: q, d: d, onlyAfter: true}
		mu.Lock()
		fqs = append(fqs, fq)
		mu.Unlock()
		return fq
	}}
	first := newStack(t, "gcp", chainYAML("20ms"), stackOptions{wrap: wrap})
	second := newStack(t, "gcp", chainYAML("20ms"), stackOptions{wrap: wrap, emu: first.emu})
	stacks := []*stack{first, second}
	figs := []figures{{scenario: "shared-queue", backend: "gcp-first"}, {scenario: "shared-queue", backend: "gcp-second"}}
	ids := make([][]string, 2)
	began := time.Now()
	var wg sync.WaitGroup
	for i, s := range stacks {
		wg.Go(func() {
			for k := range sz.sharedRuns {
				key := fmt.Sprintf("shared-%d", k)
				figs[i].tried++
				if s.startRun(key) {
					ids[i] = append(ids[i], "chaos@"+key)
				}
			}
		})
	}
	wg.Wait()
	views := make([]map[string]runView, 2)
	for i, s := range stacks {
		views[i] = waitRuns(ids[i], 2*time.Minute, s.getRun)
	}
	d.off.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	_ = first.emu.WaitIdle(ctx)
	cancel()
	st := first.emu.Stats()
	var lost int64
	for _, fq := range fqs {
		lost += fq.after.Load()
	}
	for i, s := range stacks {
		figs[i].recovery = time.Since(began)
		bodies, err := ReadBodies(s.bodyLog())
		if err != nil {
			t.Fatal(err)
		}
		problems := tally(t, &figs[i], ids[i], views[i], bodies, nil, nil)
		if i == 1 {
			figs[i].add("tasks created %d", st.Created)
			figs[i].add("names refused as taken %d", st.AlreadyExists)
			figs[i].add("replies lost %d", lost)
		}
		check(t, figs[i], problems)
	}
	// Every task of both services was created once: 4 steps per run per
	// service (the lost replies' retries are refused as taken).
	if want := int64(4 * (len(ids[0]) + len(ids[1]))); st.Created != want {
		t.Errorf("the shared queue created %d tasks, want %d (4 per run per service)", st.Created, want)
	}
}
