package pipeline_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// A waiting step notifies (after commit) when its wait begins and when a
// check's error appears or clears, not on every check: the live message
// shows the wait without an edit per check.
func TestAsyncWaitingEvents(t *testing.T) {
	h := newHarness(t, chainYAML)
	var waits []pipeline.StepRun
	h.events.check = func(e pipeline.Event) {
		if e.Kind != pipeline.EventStepWaiting {
			return
		}
		// Events are sent in the background: the step may have moved on
		// since (a later check, or succeeded), but the event's state must
		// be a committed version (the rule of TestNotificationsFollowCommitsAndNeverFailSteps).
		stored, err := h.ledger.GetSteps(ctx, e.Run.ID, e.Step.Step)
		committed := err == nil && e.Step.Version != 0 && (stored[0].Version > e.Step.Version ||
			stored[0].Version == e.Step.Version && stored[0].Status == pipeline.StepWaiting && stored[0].Check == e.Step.Check)
		if !committed {
			t.Errorf("waiting event (check %d) before its commit: %+v (%v)", e.Step.Check, stored, err)
		}
		waits = append(waits, *e.Step)
	}
	j := &fakeJob{polls: 5, after: time.Minute, checkErr: func(n int) error {
		if n == 2 || n == 3 {
			return errors.New("503 from the jobs API")
		}
		return nil
	}}
	withJob(t, h, waitsYAML, j)
	id, c1 := startWaiting(t, h)
	h.queue.tasks = append(h.queue.tasks, c1)
	h.deliverTimed(20)
	if r := h.run(id); r.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s", r.Status)
	}
	// Seven checks: 2 and 3 fail with one error (it appears with the wait
	// for check 3, stays for check 4 and clears with the wait for check 5).
	if len(waits) != 3 {
		t.Fatalf("%d waiting events, want 3 (begin, error, cleared): %+v", len(waits), waits)
	}
	if waits[0].Check != 1 || waits[0].Link != "https://jobs.example/2026-11-23" || waits[0].Error != "" {
		t.Fatalf("first waiting event: %+v", waits[0])
	}
	if !strings.Contains(waits[1].Error, "503") || waits[2].Error != "" {
		t.Fatalf("error events: %q then %q", waits[1].Error, waits[2].Error)
	}
	if _, c, _ := j.counts(); c != 7 {
		t.Fatalf("%d checks, want 7", c)
	}
}
