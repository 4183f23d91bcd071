package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/pipeline"
)

// Scenario 4: queue faults. A share of enqueues fails before reaching the
// queue and as large a share fails after (the task exists, the reply is
// lost); on the gcp backend the connection to the Cloud Tasks emulator also
// goes through a proxy that refuses some connections and resets all of them
// periodically. Every run must finish with each body run once.
func TestQueueFaults(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { queueFaults(t, backend, sz) })
	}
}

func queueFaults(t *testing.T, backend string, sz size) {
	d := newDice(sz.faultShare, uint64(time.Now().UnixNano()))
	// The first two enqueues fail, one of each kind, so that both are
	// injected whatever the dice do next: in local mode only the enqueues
	// outside a step's transition (a run's first step, the sweeper's)
	// reach the queue, a few dozen at the CI size, and chance alone once
	// injected no lost reply among them.
	d.first = []int{1, 2}
	var fq *faultyQueue
	opts := stackOptions{wrap: app.Wrappers{Queue: func(q pipeline.Queue) pipeline.Queue {
		fq = &faultyQueue{inner: q, d: d}
		return fq
	}}}
	var px *proxy
	// On gcp the service dials the Cloud Tasks emulator through the proxy.
	s := newStackWith(t, backend, chainYAML("10ms"), opts, func(s *stack) {
		if s.emu != nil {
			px = newProxy(t, s.emu.Addr(), 0.1)
			s.opts.tasksHost = px.addr()
		}
	})
	var stopResets func()
	if px != nil {
		stopResets = px.resetEvery(2 * time.Second)
	}
	f := figures{scenario: "queue-faults", backend: backend}
	var ids []string
	for i := range sz.faultRuns {
		key := fmt.Sprintf("qf-%d", i)
		f.tried++
		if s.startRun(key) {
			ids = append(ids, "chaos@"+key)
		}
	}
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	// Faults off: what is still in flight must now finish.
	d.off.Store(true)
	if px != nil {
		stopResets()
		px.calm()
	}
	calm := time.Now()
	views = waitRuns(ids, 2*time.Minute, s.getRun)
	f.recovery = time.Since(calm)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, nil, nil)
	f.add("enqueues %d", fq.calls.Load())
	f.add("failed before %d", fq.before.Load())
	f.add("reply lost %d", fq.after.Load())
	if px != nil {
		f.add("wire resets %d", px.resets.Load())
		f.add("connections refused %d", px.refused.Load())
	}
	check(t, f, problems)
	if fq.before.Load() == 0 || fq.after.Load() == 0 {
		t.Errorf("no fault of one kind was injected (before %d, after %d): the scenario proved nothing", fq.before.Load(), fq.after.Load())
	}
}
