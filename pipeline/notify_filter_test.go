package pipeline_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// kindsNotifier wants only the kinds it is given and records what it is
// handed, including any kind it did not want.
type kindsNotifier struct {
	want map[pipeline.EventKind]bool
	mu   sync.Mutex
	got  []pipeline.EventKind
}

var _ pipeline.EventFilter = (*kindsNotifier)(nil)

func (k *kindsNotifier) Wants(kind pipeline.EventKind) bool { return k.want[kind] }

func (k *kindsNotifier) Notify(_ context.Context, e pipeline.Event) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.got = append(k.got, e.Kind)
	return nil
}

func (k *kindsNotifier) kinds() []pipeline.EventKind {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.got)
}

func TestNotifiersHandEachMemberOnlyTheKindsItWants(t *testing.T) {
	all := &eventLog{}
	runs := &kindsNotifier{want: map[pipeline.EventKind]bool{pipeline.EventRunSucceeded: true}}
	ns := pipeline.Notifiers{all, runs}
	for _, kind := range []pipeline.EventKind{pipeline.EventStepStarted, pipeline.EventRunSucceeded, pipeline.EventStepSucceeded} {
		if err := ns.Notify(context.Background(), pipeline.Event{Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(all.events); n != 3 {
		t.Errorf("a notifier without a filter got %d events, want all 3", n)
	}
	if got := runs.kinds(); !slices.Equal(got, []pipeline.EventKind{pipeline.EventRunSucceeded}) {
		t.Errorf("the filtered notifier got %v, want only run_succeeded", got)
	}
	for _, tc := range []struct {
		ns   pipeline.Notifiers
		kind pipeline.EventKind
		want bool
	}{
		{nil, pipeline.EventRunStarted, false},
		{pipeline.Notifiers{runs}, pipeline.EventStepStarted, false},
		{pipeline.Notifiers{runs}, pipeline.EventRunSucceeded, true},
		{pipeline.Notifiers{runs, all}, pipeline.EventStepStarted, true},
	} {
		if got := pipeline.Wants(tc.ns, tc.kind); got != tc.want {
			t.Errorf("Wants(%d notifiers, %s) = %v, want %v", len(tc.ns), tc.kind, got, tc.want)
		}
	}
}

// The orchestrator does not hand its notifier a kind the notifier does not
// want (the background sender does not even queue it), and still hands over
// the kinds it wants, final ones included.
func TestOrchestratorSkipsKindsItsNotifierDoesNotWant(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.closeOrch()
	h.orch = nil
	defs, err := pipeline.Parse("test.yaml", []byte(chainYAML), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	runs := &kindsNotifier{want: map[pipeline.EventKind]bool{pipeline.EventRunStarted: true, pipeline.EventRunSucceeded: true}}
	orch, err := pipeline.New(pipeline.Config{Catalog: pipeline.NewCatalog(defs...), Ledger: h.ledger, Queue: h.queue,
		Notifier: runs, Now: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer orch.Close(ctx)
	res, err := orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"a", "b", "c"} {
		tasks := h.queue.take()
		if len(tasks) != 1 || tasks[0].Payload.Step != step {
			t.Fatalf("queue holds %+v, want the task of %s", tasks, step)
		}
		if r, err := orch.HandleStep(ctx, tasks[0].Payload, pipeline.Delivery{TaskName: tasks[0].Name}); err != nil || r.Outcome != pipeline.OutcomeSucceeded {
			t.Fatalf("%s: %+v %v", step, r, err)
		}
	}
	if err := orch.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := runs.kinds(), []pipeline.EventKind{pipeline.EventRunStarted, pipeline.EventRunSucceeded}; !slices.Equal(got, want) {
		t.Errorf("notifier got %v, want %v", got, want)
	}
	r, err := h.ledger.GetRun(ctx, res.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunSucceeded || r.Notify != pipeline.NotifyDone {
		t.Errorf("run %s, notification owed %q: want succeeded with its final notification recorded as sent", r.Status, r.Notify)
	}
}
