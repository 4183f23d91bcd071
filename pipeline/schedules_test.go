package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// ledgerKinds are the ledgers the schedule scenarios run against: the
// embedded one and Firestore on the emulator.
var ledgerKinds = []struct {
	name string
	open func(t *testing.T) pipeline.Ledger
}{
	{"bbolt", func(t *testing.T) pipeline.Ledger {
		l, err := boltledger.Open(t.TempDir() + "/ledger.db")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}},
	{"firestore", func(t *testing.T) pipeline.Ledger {
		client, _ := fsemu.NewClient(t)
		return firestoreledger.New(client, fsemu.Collection(t))
	}},
}

// newSchedHarness is a harness over the given ledger with its clock at now.
func newSchedHarness(t *testing.T, yamlText string, led pipeline.Ledger, now time.Time, extra ...pipeline.Notifier) *harness {
	t.Helper()
	h := &harness{t: t, queue: &recQueue{}, bodies: map[string]*counter{}, events: &eventLog{}, now: now, ledger: led}
	reg := steps.NewRegistry()
	for _, k := range []string{"a", "b", "c"} {
		c := &counter{}
		h.bodies[k] = c
		reg.Register(k, func(map[string]any) (steps.Step, error) { return c, nil })
	}
	defs, err := pipeline.Parse("test.yaml", []byte(yamlText), reg)
	if err != nil {
		t.Fatal(err)
	}
	h.catalog = pipeline.NewCatalog(defs...)
	h.notifiers = append(pipeline.Notifiers{h.events}, extra...)
	h.restart()
	return h
}

// restart replaces the orchestrator with a new one over the same ledger and
// clock: what a new instance (or a restarted process) would be.
func (h *harness) restart() {
	h.t.Helper()
	h.closeOrch() // the previous instance's notifications go out first
	o, err := pipeline.New(pipeline.Config{
		Catalog: h.catalog, Ledger: h.ledger, Queue: h.queue, Notifier: h.notifiers,
		Now: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.orch = o
}

func (h *harness) set(t time.Time) {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	h.now = t
}

func (h *harness) reconcile() pipeline.ReconcileReport {
	h.t.Helper()
	rep, err := h.orch.Reconcile(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		h.t.Fatalf("reconcile errors: %v", rep.Errors)
	}
	return rep
}

func (h *harness) eventsOf(kind pipeline.EventKind) []pipeline.Event {
	h.flush()
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	var out []pipeline.Event
	for _, e := range h.events.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

const lateYAML = `
name: daily
time_zone: Europe/Paris
schedule: "0 6 * * *"
deadline: "07:30"
steps:
  - {name: a, kind: a}
  - {name: b, kind: b, max_attempts: 5}
  - {name: c, kind: c}
`

// A run that finishes after its deadline gets one late alert naming the step
// it is stuck in, however many ticks and restarts see it, and its completion
// says how late it finished.
func TestLateRunAlertOnceThenLateCompletion(t *testing.T) {
	for _, lk := range ledgerKinds {
		t.Run(lk.name, func(t *testing.T) {
			ctx := context.Background()
			fire := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC) // 06:00 in Paris
			h := newSchedHarness(t, lateYAML, lk.open(t), fire)
			h.bodies["b"].fail = func(attempt int) error {
				if attempt < 3 {
					return errors.New("warehouse busy")
				}
				return nil
			}
			if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "daily", ScheduleTime: fire, Trigger: "scheduler"}); err != nil {
				t.Fatal(err)
			}
			deliverOldest(t, h) // a succeeds
			h.advance(10 * time.Minute)
			deliverOldest(t, h) // b fails, the queue will retry it
			if rep := h.reconcile(); len(rep.Alerts) != 0 {
				t.Fatalf("alerts before the deadline: %v", rep.Alerts)
			}
			if r := h.run("daily@2026-12-01"); r.Notes[pipeline.NoteDeadline] != "2026-12-01T06:30:00Z" {
				t.Errorf("deadline note = %q; want 2026-12-01T06:30:00Z", r.Notes[pipeline.NoteDeadline])
			}
			h.set(time.Date(2026, 12, 1, 6, 45, 0, 0, time.UTC)) // 07:45 in Paris
			for i := range 3 {
				h.reconcile()
				if i == 1 {
					h.restart()
				}
			}
			late := h.eventsOf(pipeline.EventRunLate)
			if len(late) != 1 {
				t.Fatalf("%d late alerts after three ticks and a restart; want 1", len(late))
			}
			a := late[0].Schedule
			if a == nil || a.Step != "b" || a.StepStatus != pipeline.StepRetrying || a.Late < 15*time.Minute || a.Late > 16*time.Minute ||
				!a.Expected.Equal(time.Date(2026, 12, 1, 6, 30, 0, 0, time.UTC)) || a.StepSince < 35*time.Minute {
				t.Fatalf("late alert = %+v; want step b retrying for 35m+, 15m late for 07:30", a)
			}
			h.set(time.Date(2026, 12, 1, 7, 12, 0, 0, time.UTC)) // 08:12 in Paris
			h.drain(20)
			r := h.run("daily@2026-12-01")
			if r.Status != pipeline.RunSucceeded {
				t.Fatalf("run %s; want succeeded", r.Status)
			}
			done := h.eventsOf(pipeline.EventRunSucceeded)
			if len(done) != 1 {
				t.Fatalf("%d completions; want 1", len(done))
			}
			by, dl, ok := pipeline.Late(done[0].Run)
			if !ok || by < 42*time.Minute || by > 43*time.Minute || !dl.Equal(a.Expected) {
				t.Errorf("completion: late %s (deadline %s, %v); want 42m after 07:30", by, dl, ok)
			}
			h.reconcile()
			if n := len(h.eventsOf(pipeline.EventRunLate)); n != 1 {
				t.Errorf("%d late alerts after the run finished; want still 1", n)
			}
		})
	}
}

// deliverOldest hands the oldest queued task to the orchestrator.
func deliverOldest(t *testing.T, h *harness) {
	t.Helper()
	tasks := h.queue.take()
	if len(tasks) == 0 {
		t.Fatal("no task queued")
	}
	_, _ = h.orch.HandleStep(context.Background(), tasks[0].Payload, pipeline.Delivery{TaskName: tasks[0].Name})
	h.queue.mu.Lock()
	h.queue.tasks = append(tasks[1:], h.queue.tasks...)
	h.queue.mu.Unlock()
}

const missedYAML = `
name: daily
time_zone: Europe/Paris
schedule: "0 6 * * *"
steps:
  - {name: a, kind: a}
`

// A day whose Scheduler never calls: one missed-start alert start_within after
// the scheduled time, never doubled by ticks or restarts, then one follow-up
// when an operator starts the run by hand.
func TestMissedStartThenFollowUp(t *testing.T) {
	for _, lk := range ledgerKinds {
		t.Run(lk.name, func(t *testing.T) {
			ctx := context.Background()
			fire := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
			h := newSchedHarness(t, missedYAML, lk.open(t), fire.Add(29*time.Minute))
			if rep := h.reconcile(); len(rep.Alerts) != 0 {
				t.Fatalf("alert within start_within: %v", rep.Alerts)
			}
			h.set(fire.Add(31 * time.Minute))
			for i := range 3 {
				h.reconcile()
				if i == 1 {
					h.restart()
				}
			}
			missed := h.eventsOf(pipeline.EventStartMissed)
			if len(missed) != 1 {
				t.Fatalf("%d missed-start alerts; want 1", len(missed))
			}
			a := missed[0].Schedule
			if a.Pipeline != "daily" || a.Date != "2026-12-01" || !a.Expected.Equal(fire) || a.Late < 31*time.Minute ||
				a.Check != "pipeline doctor" || len(a.Causes) == 0 {
				t.Fatalf("missed alert = %+v", a)
			}
			h.set(fire.Add(42 * time.Minute))
			if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "daily", Date: "2026-12-01", Trigger: "cli"}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				h.reconcile()
			}
			h.restart()
			h.reconcile()
			follow := h.eventsOf(pipeline.EventStartedLate)
			if len(follow) != 1 {
				t.Fatalf("%d follow-ups; want 1", len(follow))
			}
			if l := follow[0].Schedule.Late; l < 42*time.Minute || l > 43*time.Minute {
				t.Errorf("follow-up says %s late; want 42m", l)
			}
			if n := h.run("daily@2026-12-01").Notes[pipeline.NoteStartedLate]; n != "42m0s" {
				t.Errorf("run note started_late = %q; want 42m0s", n)
			}
			if n := len(h.eventsOf(pipeline.EventStartMissed)); n != 1 {
				t.Errorf("%d missed alerts in the end; want 1", n)
			}
		})
	}
}

// A run started in time gets neither alert.
func TestStartInTimeNoAlert(t *testing.T) {
	fire := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	h := newSchedHarness(t, missedYAML, ledgerKinds[0].open(t), fire.Add(time.Minute))
	if _, err := h.orch.Start(context.Background(), pipeline.StartRequest{Pipeline: "daily", ScheduleTime: fire, Trigger: "scheduler"}); err != nil {
		t.Fatal(err)
	}
	h.set(fire.Add(2 * time.Hour))
	h.reconcile()
	if n := len(h.eventsOf(pipeline.EventStartMissed)) + len(h.eventsOf(pipeline.EventStartedLate)); n != 0 {
		t.Errorf("%d schedule alerts for a run started in time", n)
	}
}

// A notifier failing the alert leaves it owed: a later tick (after the
// sender's grace) sends it, once.
func TestMissedStartAlertRetriedAfterFailure(t *testing.T) {
	fire := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	failing := &flakyNotifier{fail: 1}
	h := newSchedHarness(t, missedYAML, ledgerKinds[0].open(t), fire.Add(31*time.Minute), failing)
	h.reconcile()
	h.reconcile() // within the grace: the claim stands
	if failing.calls != 1 {
		t.Fatalf("%d alert attempts within the grace; want 1", failing.calls)
	}
	h.advance(3 * time.Minute)
	h.reconcile()
	h.reconcile()
	if failing.calls != 2 {
		t.Errorf("%d alert attempts; want 2 (one failed, one sent)", failing.calls)
	}
}

type flakyNotifier struct {
	fail  int
	calls int
}

func (f *flakyNotifier) Notify(_ context.Context, e pipeline.Event) error {
	if e.Kind != pipeline.EventStartMissed {
		return nil
	}
	f.calls++
	if f.fail > 0 {
		f.fail--
		return errors.New("discord down")
	}
	return nil
}

// DST days: the missed-start check expects the run at the same instant the
// local cron fires (the end of a skipped hour; the first of a repeated one).
func TestMissedStartOnDSTDays(t *testing.T) {
	cases := []struct {
		name, tz, cron, date string
		fire                 time.Time // UTC
	}{
		{"paris spring forward", "Europe/Paris", "30 2 * * *", "2026-03-29", time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{"paris fall back", "Europe/Paris", "30 2 * * *", "2026-10-25", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
		{"sao paulo spring forward", "America/Sao_Paulo", "0 0 * * *", "2018-11-04", time.Date(2018, 11, 4, 3, 0, 0, 0, time.UTC)},
		{"sao paulo fall back", "America/Sao_Paulo", "30 23 * * *", "2019-02-16", time.Date(2019, 2, 17, 1, 30, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			yaml := strings.NewReplacer("Europe/Paris", c.tz, "0 6 * * *", c.cron).Replace(missedYAML)
			h := newSchedHarness(t, yaml, ledgerKinds[0].open(t), c.fire.Add(29*time.Minute))
			h.reconcile()
			if n := len(h.eventsOf(pipeline.EventStartMissed)); n != 0 {
				t.Fatalf("alert 29 min after the fire time")
			}
			h.set(c.fire.Add(31 * time.Minute))
			h.reconcile()
			// An hour later (past the repeated hour on a fall-back day) no
			// second alert.
			h.set(c.fire.Add(90 * time.Minute))
			h.reconcile()
			missed := h.eventsOf(pipeline.EventStartMissed)
			if len(missed) != 1 {
				t.Fatalf("%d missed alerts; want 1", len(missed))
			}
			if a := missed[0].Schedule; a.Date != c.date || !a.Expected.Equal(c.fire) {
				t.Errorf("alert for %s at %s; want %s at %s", a.Date, a.Expected.UTC(), c.date, c.fire)
			}
		})
	}
}

// Concurrent sweeper ticks on several instances (Cloud Scheduler's
// at-least-once delivery, two Cloud Run instances) send each alert once.
func TestConcurrentTicksNeverDoubleAnAlert(t *testing.T) {
	for _, lk := range ledgerKinds {
		t.Run(lk.name, func(t *testing.T) {
			const twoPipes = missedYAML + "---\n" + `
name: late
time_zone: America/Sao_Paulo
schedule: "0 3 * * *"
deadline: 30m
steps:
  - {name: a, kind: a}
  - {name: b, kind: b}
`
			fire := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC) // 06:00 Paris
			h := newSchedHarness(t, twoPipes, lk.open(t), fire.Add(-time.Minute))
			// late: 03:00 in Sao Paulo is 06:00 UTC; started on time, stuck.
			h.set(time.Date(2026, 12, 1, 6, 0, 1, 0, time.UTC))
			if _, err := h.orch.Start(context.Background(), pipeline.StartRequest{Pipeline: "late", Date: "2026-12-01", Trigger: "scheduler"}); err != nil {
				t.Fatal(err)
			}
			h.set(time.Date(2026, 12, 1, 6, 45, 0, 0, time.UTC))
			orchs := []*pipeline.Orchestrator{h.orch}
			for range 3 {
				h.restart()
				orchs = append(orchs, h.orch)
			}
			var wg sync.WaitGroup
			for _, o := range orchs {
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := o.Reconcile(context.Background()); err != nil {
							t.Errorf("reconcile: %v", err)
						}
					}()
				}
			}
			wg.Wait()
			if n := len(h.eventsOf(pipeline.EventStartMissed)); n != 1 {
				t.Errorf("%d missed-start alerts from 8 concurrent ticks; want 1", n)
			}
			if n := len(h.eventsOf(pipeline.EventRunLate)); n != 1 {
				t.Errorf("%d late alerts from 8 concurrent ticks; want 1", n)
			}
		})
	}
}
