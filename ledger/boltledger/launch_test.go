package boltledger_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

func launchedRun() (pipeline.Run, []pipeline.StepRun, []pipeline.Task) {
	now := time.Now().UTC()
	r := pipeline.Run{ID: pipeline.RunID("p", "k"), Pipeline: "p", Key: "k", Date: "2026-03-14", Status: pipeline.RunRunning,
		CreatedAt: now, StartedAt: now}
	steps := []pipeline.StepRun{
		{RunID: r.ID, Step: "a", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3},
		{RunID: r.ID, Step: "b", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3},
	}
	tasks := []pipeline.Task{{Name: "task-a", Payload: pipeline.TaskPayload{RunID: r.ID, Step: "a", Generation: 1, Date: r.Date}}}
	return r, steps, tasks
}

// A launched creation is one commit: the run, its steps and its roots'
// tasks. Creating it again writes nothing and enqueues nothing.
func TestCreateRunLaunchedIsOneCommit(t *testing.T) {
	ctx := context.Background()
	st, q := newStore(t, nil)
	r, steps, tasks := launchedRun()
	before := st.Committer().Commits()
	stored, created, err := st.CreateRunLaunched(ctx, r, steps, tasks)
	if err != nil || !created {
		t.Fatalf("CreateRunLaunched: created %v, %v", created, err)
	}
	if n := st.Committer().Commits() - before; n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
	if stored.Status != pipeline.RunRunning || stored.Version != 1 {
		t.Errorf("stored %s at version %d", stored.Status, stored.Version)
	}
	got, err := st.GetRun(ctx, r.ID)
	if err != nil || got.Status != pipeline.RunRunning || len(got.Steps) != 2 {
		t.Fatalf("GetRun: %+v, %v", got, err)
	}
	if p := pendingTasks(t, st); len(p) != 1 || !p["task-a"] {
		t.Fatalf("pending tasks %v, want task-a", p)
	}
	if n := q.Pending(); n != 1 {
		t.Fatalf("queue holds %d tasks, want 1", n)
	}

	// Again (a duplicate start): the stored run, nothing enqueued.
	again := r
	again.Params = map[string]string{"other": "start"}
	found, created, err := st.CreateRunLaunched(ctx, again, steps, []pipeline.Task{{Name: "task-x", Payload: tasks[0].Payload}})
	if err != nil || created {
		t.Fatalf("second CreateRunLaunched: created %v, %v", created, err)
	}
	if found.WriteID != stored.WriteID || found.Params["other"] != "" {
		t.Errorf("found %+v, want the stored run", found)
	}
	if p := pendingTasks(t, st); len(p) != 1 || p["task-x"] {
		t.Fatalf("pending tasks %v: the found run's tasks were enqueued", p)
	}
}

// A launched creation whose transaction fails writes nothing: no run, no
// task; done again, it creates both.
func TestCreateRunLaunchedFailingTransactionWritesNothing(t *testing.T) {
	ctx := context.Background()
	var fail atomic.Int32
	fail.Store(1)
	st, q := newStore(t, func(w boltledger.TaskWriter) boltledger.TaskWriter { return failingWrites{w, &fail} })
	r, steps, tasks := launchedRun()
	if _, _, err := st.CreateRunLaunched(ctx, r, steps, tasks); !errors.Is(err, errInjected) {
		t.Fatalf("CreateRunLaunched: %v, want the injected failure", err)
	}
	if _, err := st.GetRun(ctx, r.ID); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("run after a failed creation: %v, want not found", err)
	}
	if p := pendingTasks(t, st); len(p) != 0 || q.Pending() != 0 {
		t.Fatalf("tasks after a failed creation: stored %v, queued %d", p, q.Pending())
	}
	if _, created, err := st.CreateRunLaunched(ctx, r, steps, tasks); err != nil || !created {
		t.Fatalf("CreateRunLaunched again: created %v, %v", created, err)
	}
	if p := pendingTasks(t, st); len(p) != 1 || q.Pending() != 1 {
		t.Fatalf("tasks: stored %v, queued %d, want task-a", p, q.Pending())
	}
}
