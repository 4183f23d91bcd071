package boltledger_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/pipeline/ledgertest"
)

func openTemp(t testing.TB) *boltledger.Ledger {
	t.Helper()
	l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func TestContract(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) pipeline.Ledger { return openTemp(t) })
}

// TestContractSharedDB runs the suite on one file shared by all subtests, as
// with the queue in local mode, through New.
func TestContractSharedDB(t *testing.T) {
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "nested", "dir", "pipeline.db"))
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ledgertest.Run(t, func(t *testing.T) pipeline.Ledger {
		l, err := boltledger.New(db)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() {
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return l
	})
}

func TestDurable(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := boltledger.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	created := time.Date(2026, 3, 14, 6, 0, 0, 123456789, time.UTC)
	r := pipeline.Run{ID: "daily@2026-03-14", Pipeline: "daily", Key: "2026-03-14", Date: "2026-03-14",
		Status: pipeline.RunRunning, CreatedAt: created, Notify: pipeline.NotifyPending}
	steps := []pipeline.StepRun{
		{RunID: r.ID, Step: "extract", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3},
		{RunID: r.ID, Step: "load", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3},
	}
	if _, _, err := l.CreateRun(ctx, r, steps); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	st, err := l.GetSteps(ctx, r.ID, "extract")
	if err != nil {
		t.Fatalf("GetSteps: %v", err)
	}
	done := st[0]
	done.Status, done.Attempts, done.Output = pipeline.StepSucceeded, 1, []byte(`{"rows":3}`)
	done, err = l.UpdateStep(ctx, done)
	if err != nil {
		t.Fatalf("UpdateStep: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	l2, err := boltledger.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l2.Close()
	got, err := l2.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatalf("GetRun after reopen: %v", err)
	}
	if got.Status != r.Status || !got.CreatedAt.Equal(created) || got.Notify != pipeline.NotifyPending || got.Version != 1 {
		t.Errorf("run after reopen = %+v", got)
	}
	if len(got.Steps) != 2 || got.Steps[0].Step != "extract" || got.Steps[1].Step != "load" {
		t.Fatalf("steps after reopen = %+v", got.Steps)
	}
	if s := got.Steps[0]; s.Status != pipeline.StepSucceeded || string(s.Output) != `{"rows":3}` || s.Version != done.Version {
		t.Errorf("extract after reopen = %+v, want status succeeded, output and version %d", s, done.Version)
	}
	runs, err := l2.ListRuns(ctx, pipeline.RunFilter{Pipeline: "daily"})
	if err != nil || len(runs) != 1 || runs[0].ID != r.ID {
		t.Errorf("ListRuns after reopen = %v, %v", runIDs(runs), err)
	}
	// The stale version from before the restart still loses.
	if _, err := l2.UpdateStep(ctx, st[0]); !errors.Is(err, pipeline.ErrConflict) {
		t.Errorf("stale UpdateStep after reopen = %v, want ErrConflict", err)
	}
}

func TestOpenDBLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := boltledger.OpenDB(path)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	// flock is per open file, so a second open in this process contends too.
	_, err = boltledger.OpenDB(path)
	if err == nil || !strings.Contains(err.Error(), "another pipeline process holds the file") {
		t.Fatalf("second OpenDB = %v, want the file-held error", err)
	}
}

func TestNewKeepsSharedDBOpen(t *testing.T) {
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	l, err := boltledger.New(db)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("queue.tasks"))
		return err
	}); err != nil {
		t.Fatalf("shared DB unusable after ledger Close: %v", err)
	}
	if _, err := boltledger.New(db); err != nil {
		t.Fatalf("New on an initialised DB: %v", err)
	}
}

func TestCreateRunRejectsBadInput(t *testing.T) {
	ctx, l := t.Context(), openTemp(t)
	r := pipeline.Run{ID: "p@k", Pipeline: "p", Key: "k"}
	cases := map[string]struct {
		run   pipeline.Run
		steps []pipeline.StepRun
	}{
		"empty run ID":       {pipeline.Run{}, nil},
		"unnamed step":       {r, []pipeline.StepRun{{RunID: r.ID}}},
		"duplicate step":     {r, []pipeline.StepRun{{RunID: r.ID, Step: "a"}, {RunID: r.ID, Step: "a"}}},
		"step of other run":  {r, []pipeline.StepRun{{RunID: "q@k", Step: "a"}}},
		"output is not JSON": {r, []pipeline.StepRun{{RunID: r.ID, Step: "a", Output: []byte("{")}}},
	}
	for name, c := range cases {
		if _, _, err := l.CreateRun(ctx, c.run, c.steps); !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("%s: CreateRun = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := l.GetRun(ctx, r.ID); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("GetRun after rejected creates = %v, want ErrNotFound", err)
	}
}

func runIDs(runs []pipeline.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}
