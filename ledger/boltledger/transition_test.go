package boltledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/pipeline/ledgertest"
	"github.com/pipelinehq/pipeline/queue/local"
)

// guard bounds waits for things that must happen; not a timing assertion.
const guard = 60 * time.Second

// TestContractStore runs the ledger contract on the ledger with the local
// queue attached (what local mode gives the orchestrator).
func TestContractStore(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) pipeline.Ledger {
		st, _ := newStore(t, nil)
		return st
	})
}

// newStore opens a ledger and a local queue sharing one file and one
// Committer, as local mode does. wrap, if set, decorates the queue's
// transition writes (to inject a failure inside the transaction).
func newStore(t *testing.T, wrap func(boltledger.TaskWriter) boltledger.TaskWriter) (*boltledger.Store, *local.Queue) {
	t.Helper()
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "pipeline.db"))
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	l, err := boltledger.New(db)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	q, err := local.New(db, local.Config{Commit: l.Committer().Batch, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatalf("local.New: %v", err)
	}
	var w boltledger.TaskWriter = q
	if wrap != nil {
		w = wrap(q)
	}
	return l.WithTasks(w), q
}

// failingWrites makes the transaction fail after the queue's writes, while
// fail is true.
type failingWrites struct {
	boltledger.TaskWriter
	fail *atomic.Int32 // how many transitions still fail
}

var errInjected = errors.New("injected failure inside the transaction")

func (f failingWrites) TransitionWrites(tasks []pipeline.Task, handled pipeline.Task) (func(*bbolt.Tx) error, func(bool), error) {
	write, after, err := f.TaskWriter.TransitionWrites(tasks, handled)
	if err != nil || f.fail.Add(-1) < 0 {
		return write, after, err
	}
	return func(tx *bbolt.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		return errInjected
	}, after, nil
}

// transitionFixture is a run with steps a and b, a's task enqueued in the
// queue, and a service that hands each delivery to handle.
type transitionFixture struct {
	st     *boltledger.Store
	q      *local.Queue
	taskA  pipeline.Task
	taskB  pipeline.Task
	a      pipeline.StepRun // as created
	handle func(d pipeline.Task) int
	got    chan pipeline.Task
}

func newTransitionFixture(t *testing.T, wrap func(boltledger.TaskWriter) boltledger.TaskWriter) *transitionFixture {
	t.Helper()
	ctx := context.Background()
	st, q := newStore(t, wrap)
	f := &transitionFixture{st: st, q: q, got: make(chan pipeline.Task, 16)}
	r := pipeline.Run{ID: pipeline.RunID("p", "k"), Pipeline: "p", Key: "k", Date: "2026-03-14", Status: pipeline.RunRunning, CreatedAt: time.Now().UTC()}
	steps := []pipeline.StepRun{
		{RunID: r.ID, Step: "a", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3},
		{RunID: r.ID, Step: "b", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3},
	}
	if _, _, err := st.CreateRun(ctx, r, steps); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	got, err := st.GetSteps(ctx, r.ID, "a")
	if err != nil {
		t.Fatal(err)
	}
	f.a = got[0]
	f.taskA = pipeline.Task{Name: "task-a", Payload: pipeline.TaskPayload{RunID: r.ID, Step: "a", Generation: 1, Date: r.Date}}
	f.taskB = pipeline.Task{Name: "task-b", Payload: pipeline.TaskPayload{RunID: r.ID, Step: "b", Generation: 1, Date: r.Date}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p pipeline.TaskPayload
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			t.Errorf("decode: %v", err)
		}
		d := pipeline.Task{Name: req.Header.Get(local.HeaderTaskName), Payload: p}
		f.got <- d
		w.WriteHeader(f.handle(d))
	}))
	t.Cleanup(srv.Close)
	q.SetBaseURL(srv.URL)
	if err := q.Enqueue(ctx, f.taskA); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return f
}

// run delivers until the test ends.
func (f *transitionFixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.q.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func (f *transitionFixture) next(t *testing.T) pipeline.Task {
	t.Helper()
	select {
	case d := <-f.got:
		return d
	case <-time.After(guard):
		t.Fatal("no delivery")
		return pipeline.Task{}
	}
}

// succeeded is step a as its success is recorded.
func (f *transitionFixture) succeeded() pipeline.StepRun {
	s := f.a
	s.Status, s.Attempts, s.Output = pipeline.StepSucceeded, 1, json.RawMessage(`{"rows":3}`)
	s.FinishedAt = time.Now().UTC()
	return s
}

// pendingTasks lists the task names stored as pending in the file.
func pendingTasks(t *testing.T, st *boltledger.Store) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := st.Committer().Batch(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("queue_tasks")).ForEach(func(k, _ []byte) error {
			names[string(k)] = true
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestTransitionCommitsStepSuccessorAndDeletionInOneCommit(t *testing.T) {
	f := newTransitionFixture(t, nil)
	type result struct {
		stored  pipeline.StepRun
		err     error
		commits uint64
		pending map[string]bool
	}
	results := make(chan result, 1)
	releaseB := make(chan struct{})
	f.handle = func(d pipeline.Task) int {
		switch d.Payload.Step {
		case "a":
			before := f.st.Committer().Commits()
			stored, err := f.st.Transition(context.Background(), f.succeeded(), []pipeline.Task{f.taskB}, d)
			results <- result{stored: stored, err: err, commits: f.st.Committer().Commits() - before}
			return http.StatusOK
		default:
			<-releaseB
			return http.StatusOK
		}
	}
	f.run(t)
	if d := f.next(t); d.Name != f.taskA.Name {
		t.Fatalf("first delivery %s, want %s", d.Name, f.taskA.Name)
	}
	res := <-results
	if res.err != nil {
		t.Fatalf("Transition: %v", res.err)
	}
	if res.commits != 1 {
		t.Errorf("Transition made %d commits, want 1", res.commits)
	}
	if res.stored.Version == f.a.Version {
		t.Errorf("stored version %d not advanced", res.stored.Version)
	}
	// b is delivered (handed to the dispatcher), and while its delivery is
	// held the file has b pending and a gone.
	if d := f.next(t); d.Name != f.taskB.Name {
		t.Fatalf("second delivery %s, want %s", d.Name, f.taskB.Name)
	}
	pending := pendingTasks(t, f.st)
	if !pending[f.taskB.Name] || pending[f.taskA.Name] {
		t.Errorf("pending tasks in the file %v: want %s and not %s", pending, f.taskB.Name, f.taskA.Name)
	}
	got, err := f.st.GetSteps(context.Background(), f.a.RunID, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Status != pipeline.StepSucceeded || got[0].Version != res.stored.Version || string(got[0].Output) != `{"rows":3}` {
		t.Errorf("step a stored as %+v", got[0])
	}
	// The deleted task's name is still refused (dedup window).
	if err := f.q.Enqueue(context.Background(), f.taskA); err != nil {
		t.Fatal(err)
	}
	close(releaseB)
	waitIdle(t, f.q)
	waitNoneStored(t, f.st)
	select {
	case d := <-f.got:
		t.Errorf("unexpected delivery of %s", d.Name)
	default:
	}
}

func TestTransitionFailingTransactionWritesNothingAndLosesNoTask(t *testing.T) {
	var fail atomic.Int32
	fail.Store(1)
	f := newTransitionFixture(t, func(w boltledger.TaskWriter) boltledger.TaskWriter { return failingWrites{w, &fail} })
	errs := make(chan error, 4)
	f.handle = func(d pipeline.Task) int {
		if d.Payload.Step != "a" {
			return http.StatusOK
		}
		_, err := f.st.Transition(context.Background(), f.succeeded(), []pipeline.Task{f.taskB}, d)
		errs <- err
		if err != nil {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	// Deliver a once, with the transaction failing: nothing of it is
	// written; a stays pending and is delivered again.
	f.run(t)
	f.next(t)
	if err := <-errs; !errors.Is(err, errInjected) {
		t.Fatalf("Transition: %v, want the injected failure", err)
	}
	got, err := f.st.GetSteps(context.Background(), f.a.RunID, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Version != f.a.Version || got[0].Status != pipeline.StepPending {
		t.Errorf("step a written by a failed transaction: %+v", got[0])
	}
	if d := f.next(t); d.Name != f.taskA.Name {
		t.Fatalf("retry delivered %s, want %s", d.Name, f.taskA.Name)
	}
	if err := <-errs; err != nil {
		t.Fatalf("Transition on the retry: %v", err)
	}
	if d := f.next(t); d.Name != f.taskB.Name {
		t.Fatalf("then %s, want %s", d.Name, f.taskB.Name)
	}
	waitIdle(t, f.q)
	waitNoneStored(t, f.st)
}

func TestTransitionLostCompareAndSwapWritesNothing(t *testing.T) {
	f := newTransitionFixture(t, nil)
	errs := make(chan error, 4)
	f.handle = func(d pipeline.Task) int {
		stale := f.succeeded()
		stale.Version-- // another write won meanwhile
		_, err := f.st.Transition(context.Background(), stale, []pipeline.Task{f.taskB}, d)
		errs <- err
		return http.StatusOK
	}
	f.run(t)
	f.next(t)
	if err := <-errs; !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("Transition with a stale version: %v, want ErrConflict", err)
	}
	waitIdle(t, f.q)
	// a's deletion is the queue's own (the 200), b was never enqueued.
	waitNoneStored(t, f.st)
	select {
	case d := <-f.got:
		t.Errorf("unexpected delivery of %s", d.Name)
	default:
	}
}

func TestTransitionDeletesOnlyTheTaskInFlightForThatStep(t *testing.T) {
	f := newTransitionFixture(t, nil)
	other := pipeline.Task{Name: "task-other", Payload: pipeline.TaskPayload{RunID: f.a.RunID, Step: "b", Generation: 2, Date: "2026-03-14"}}
	if err := f.q.Enqueue(context.Background(), pipeline.Task{Name: other.Name, Payload: other.Payload, Delay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	hold := make(chan struct{})
	f.handle = func(d pipeline.Task) int {
		if d.Payload.Step != "a" {
			return http.StatusOK
		}
		// Names that are not this delivery's: a pending task not in
		// flight, and this task's name with another step's payload.
		s := f.succeeded()
		_, err := f.st.Transition(context.Background(), s, nil, other)
		errs <- err
		forged := d
		forged.Payload.Step = "b"
		s.Version++
		_, err = f.st.Transition(context.Background(), s, nil, forged)
		errs <- err
		<-hold
		return http.StatusOK
	}
	f.run(t)
	f.next(t)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Transition: %v", err)
		}
	}
	p := pendingTasks(t, f.st)
	if !p[other.Name] || !p[f.taskA.Name] {
		t.Errorf("pending tasks %v: a transition deleted a task that was not its delivery", p)
	}
	close(hold)
}

func waitIdle(t *testing.T, q *local.Queue) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for q.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue still has %d tasks", q.Pending())
		}
		time.Sleep(time.Millisecond)
	}
}

// waitNoneStored waits until no task is stored as pending (a delivered task's
// deletion is committed shortly after its delivery).
func waitNoneStored(t *testing.T, st *boltledger.Store) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		p := pendingTasks(t, st)
		if len(p) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks still stored as pending: %v", p)
		}
		time.Sleep(time.Millisecond)
	}
}
