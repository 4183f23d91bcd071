package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// recQueue is an in-memory queue that records tasks by name (dedup like Cloud
// Tasks) and lets a test deliver them by hand.
type recQueue struct {
	mu      sync.Mutex
	tasks   []pipeline.Task
	names   map[string]bool
	calls   int
	failing int // fail this many Enqueue calls first
}

var _ pipeline.Queue = (*recQueue)(nil)

func (q *recQueue) Enqueue(_ context.Context, t pipeline.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if q.failing > 0 {
		q.failing--
		return errors.New("queue unavailable")
	}
	if q.names == nil {
		q.names = map[string]bool{}
	}
	if q.names[t.Name] {
		return nil
	}
	q.names[t.Name] = true
	q.tasks = append(q.tasks, t)
	return nil
}

// take removes and returns the queued tasks.
func (q *recQueue) take() []pipeline.Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.tasks
	q.tasks = nil
	return out
}

// counter is a step body that counts its runs and can be told how to behave.
type counter struct {
	runs  atomic.Int64
	delay time.Duration
	// fail decides the error of attempt n (from 1); nil means success.
	fail func(attempt int) error
	out  json.RawMessage
	// started, if set, gets the body's context when a run begins; after, if
	// set, is called as the body returns.
	started chan context.Context
	after   func()
	// gate, if set, holds the body until it is closed.
	gate chan struct{}
	// seen, if set, is called with each run's input.
	seen func(in steps.Input)
}

func (c *counter) Run(ctx context.Context, in steps.Input) (json.RawMessage, error) {
	c.runs.Add(1)
	if c.started != nil {
		c.started <- ctx
	}
	if c.after != nil {
		defer c.after()
	}
	if c.seen != nil {
		c.seen(in)
	}
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.fail != nil {
		if err := c.fail(in.Attempt); err != nil {
			return nil, err
		}
	}
	if c.out != nil {
		return c.out, nil
	}
	return json.RawMessage(`{"step":"` + in.Step + `"}`), nil
}

// harness is an orchestrator over a real bbolt ledger and a recording queue.
type harness struct {
	t      *testing.T
	ledger pipeline.Ledger
	queue  *recQueue
	orch   *pipeline.Orchestrator
	bodies map[string]*counter
	events *eventLog
	now    time.Time
	nowMu  sync.Mutex
	// reg and notifiers are kept for deploy.
	reg *steps.Registry
	// catalog and notifiers are kept to restart the orchestrator.
	catalog   *pipeline.Catalog
	notifiers pipeline.Notifiers
}

type eventLog struct {
	mu     sync.Mutex
	events []pipeline.Event
	check  func(pipeline.Event)
	// flush waits for the notifications handed over so far (the harness's
	// orchestrator's Flush): reads see every event sent before them.
	flush func()
}

func (l *eventLog) Notify(_ context.Context, e pipeline.Event) error {
	if l.check != nil {
		l.check(e)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) count(kind pipeline.EventKind) int {
	if l.flush != nil {
		l.flush()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

const chainYAML = `
name: chain
time_zone: Europe/Paris
schedule: "0 6 * * *"
steps:
  - name: a
    kind: a
    after: []
    max_attempts: 3
  - name: b
    kind: b
  - name: c
    kind: c
`

const fanYAML = `
name: fan
time_zone: UTC
steps:
  - {name: root, kind: root, after: []}
  - {name: left, kind: left, after: [root]}
  - {name: right, kind: right, after: [root]}
  - {name: join, kind: join, after: [left, right]}
`

func newHarness(t *testing.T, yamlText string, extra ...pipeline.Notifier) *harness {
	t.Helper()
	led, err := boltledger.Open(t.TempDir() + "/ledger.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return newHarnessOn(t, yamlText, led, extra...)
}

// newHarnessOn is a harness over the given ledger.
func newHarnessOn(t *testing.T, yamlText string, led pipeline.Ledger, extra ...pipeline.Notifier) *harness {
	t.Helper()
	h := &harness{t: t, queue: &recQueue{}, bodies: map[string]*counter{}, events: &eventLog{},
		now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), reg: steps.NewRegistry()}
	for _, k := range []string{"a", "b", "c", "d", "root", "left", "right", "join"} {
		c := &counter{}
		h.bodies[k] = c
		h.reg.Register(k, func(map[string]any) (steps.Step, error) { return c, nil })
	}
	h.ledger = led
	h.notifiers = pipeline.Notifiers{h.events}
	h.notifiers = append(h.notifiers, extra...)
	h.events.flush = h.flush
	h.deploy(yamlText)
	t.Cleanup(func() { h.closeOrch() })
	return h
}

// deploy replaces the orchestrator with one serving the definitions of
// yamlText over the same ledger, queue and bodies: a new revision of the
// service, as a deploy starts it.
func (h *harness) deploy(yamlText string) {
	h.t.Helper()
	defs, err := pipeline.Parse("test.yaml", []byte(yamlText), h.reg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.closeOrch() // the previous revision's notifications go out first
	h.orch, err = pipeline.New(pipeline.Config{
		Catalog: pipeline.NewCatalog(defs...), Ledger: h.ledger, Queue: h.queue, Notifier: h.notifiers,
		Now: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: h.reg,
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// flush waits until the orchestrator has sent every notification handed to
// it so far (they are sent in the background).
func (h *harness) flush() {
	h.t.Helper()
	if h.orch == nil {
		return
	}
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.orch.Flush(fctx); err != nil {
		h.t.Fatal(err)
	}
}

// closeOrch closes the current orchestrator, if any, after its
// notifications are sent.
func (h *harness) closeOrch() {
	h.t.Helper()
	if h.orch == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.orch.Close(cctx); err != nil {
		h.t.Error(err)
	}
}

// clock ticks a millisecond per reading, as a real one would between calls.
func (h *harness) clock() time.Time {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	h.now = h.now.Add(time.Millisecond)
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	h.now = h.now.Add(d)
}

// drain delivers queued tasks until none are left (retrying failed ones up to
// limit deliveries in all) and returns the last errors by step.
func (h *harness) drain(limit int) map[string]error {
	h.t.Helper()
	errs := map[string]error{}
	var pending []pipeline.Task
	for n := 0; n < limit; n++ {
		pending = append(pending, h.queue.take()...)
		if len(pending) == 0 {
			h.flush()
			return errs
		}
		t := pending[0]
		pending = pending[1:]
		_, err := h.orch.HandleStep(context.Background(), t.Payload, pipeline.Delivery{TaskName: t.Name})
		errs[t.Payload.Step] = err
		if err != nil {
			pending = append(pending, t) // the queue retries
		}
	}
	h.t.Fatalf("drain: still %d task(s) after %d deliveries; %s of %s: %v", len(pending), limit, pending[0].Payload.Step, pending[0].Payload.RunID, errs[pending[0].Payload.Step])
	return nil
}

// run reads a run once the notifications handed over so far are sent (and
// final ones recorded).
func (h *harness) run(id string) pipeline.Run {
	h.t.Helper()
	h.flush()
	r, err := h.ledger.GetRun(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func stepOf(r pipeline.Run, name string) pipeline.StepRun {
	for _, s := range r.Steps {
		if s.Step == name {
			return s
		}
	}
	return pipeline.StepRun{}
}
