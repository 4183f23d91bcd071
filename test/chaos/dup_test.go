package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// Scenario 1: duplicate deliveries. Every step task of every run gets N
// concurrent copies while its body runs and N more after the run succeeded;
// in the lease runs, N copies race to take over step b's expired lease while
// its first body is still in flight. Exactly one body per step may complete,
// plus exactly one take-over per lease race.
func TestDuplicateDeliveries(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, true) {
		t.Run(backend, func(t *testing.T) { duplicateDeliveries(t, backend, sz) })
	}
}

func duplicateDeliveries(t *testing.T, backend string, sz size) {
	var (
		s       *stack
		led     pipeline.Ledger
		mu      sync.Mutex
		seen    = map[string]bool{}
		answers = map[string]int{} // "during" / "lease" / "after" answers by class
	)
	tally1 := func(phase string, code int, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			answers[phase+" transport-error"]++
		case code >= 500:
			answers[phase+" 5xx"]++
		default:
			answers[phase+fmt.Sprintf(" %dxx", code/100)]++
		}
	}
	copies := func(phase string, in steps.Input) {
		body := []byte(fmt.Sprintf(`{"run_id":%q,"step":%q,"generation":1,"date":"2026-11-01"}`, in.RunID, in.Step))
		var wg sync.WaitGroup
		for range sz.dupCopies {
			wg.Go(func() {
				code, _, err := s.do("POST", "/pipeline/steps/"+in.Step, tasksSA, body, nil)
				tally1(phase, code, err)
			})
		}
		wg.Wait()
	}
	hook := func(ctx context.Context, in steps.Input) error {
		k := in.RunID + "|" + in.Step
		mu.Lock()
		first := !seen[k]
		seen[k] = true
		mu.Unlock()
		if !first {
			return nil
		}
		if strings.Contains(in.RunID, "@lease-") && in.Step == "b" {
			// Expire this attempt's lease in the ledger while the body is
			// still running, then let the copies race to take it over.
			ss, err := led.GetSteps(ctx, in.RunID, "b")
			if err != nil || len(ss) != 1 {
				return fmt.Errorf("lease race: read b: %v", err)
			}
			st := ss[0]
			st.LeaseUntil = time.Now().Add(-time.Second)
			if _, err := led.UpdateStep(ctx, st); err != nil {
				return fmt.Errorf("lease race: expire b's lease: %w", err)
			}
			copies("lease", in)
			return nil
		}
		copies("during", in)
		return nil
	}
	// Long timeouts: the body waits for its copies' answers (100 at full
	// size, on a loaded machine) and must not outlive its own deadline.
	yaml := strings.ReplaceAll(chainYAML("20ms"), "timeout: 5s", "timeout: 2m")
	s = newStack(t, backend, yaml, stackOptions{hook: hook, leaseGrace: 2 * time.Second,
		wrap: app.Wrappers{Ledger: func(l pipeline.Ledger) pipeline.Ledger { led = l; return l }}})

	f := figures{scenario: "duplicates", backend: backend}
	var ids []string
	allowed := map[string]int{}
	began := time.Now()
	for i := range sz.dupRuns {
		for _, kind := range []string{"dup", "lease"} {
			key := fmt.Sprintf("%s-%d", kind, i)
			f.tried++
			if s.startRun(key) {
				ids = append(ids, "chaos@"+key)
			}
			if kind == "lease" {
				allowed["chaos@"+key+"|b"] = 1 // the take-over
			}
		}
	}
	views := waitRuns(ids, 3*time.Minute, s.getRun)
	f.recovery = time.Since(began)
	// After success: N more copies of every step of every run.
	for _, id := range ids {
		for _, step := range []string{"a", "b", "c", "d"} {
			copies("after", steps.Input{RunID: id, Step: step})
		}
	}
	// The copies after success may have re-enqueued successors: let the
	// queue drain (their names are used, or they answer already_succeeded).
	if s.emu != nil {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		_ = s.emu.WaitIdle(ctx)
		cancel()
	}
	views = waitRuns(ids, time.Minute, s.getRun)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, nil, allowed)
	// Every lease race must have produced exactly one take-over.
	takeovers := 0
	for _, b := range bodies {
		if b.Event == "start" && b.Step == "b" && strings.Contains(b.RunID, "@lease-") && b.Attempt > 1 {
			takeovers++
		}
	}
	mu.Lock()
	total := 0
	for _, n := range answers {
		total += n
	}
	mu.Unlock()
	f.add("copies %d", total)
	f.add("take-overs %d of %d", takeovers, sz.dupRuns)
	mu.Lock()
	for _, k := range sortedKeys(answers) {
		f.add("%s %d", k, answers[k])
	}
	mu.Unlock()
	check(t, f, problems)
	if takeovers != sz.dupRuns {
		t.Errorf("lease races: %d take-overs, want %d (one per expired lease)", takeovers, sz.dupRuns)
	}
}
