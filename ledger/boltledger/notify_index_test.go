package boltledger_test

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

// A file written before the index of owed notifications existed gets it
// built on open: runs owed then are listed by NotifyPending.
func TestNotifyIndexBuiltForOldFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := boltledger.OpenDB(path)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	l, err := boltledger.New(db)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	created := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var owed []string
	for i, n := range []pipeline.NotifyState{pipeline.NotifyPending, pipeline.NotifyDone, pipeline.NotifyPending} {
		r := pipeline.Run{ID: pipeline.RunID("p", string(rune('a'+i))), Pipeline: "p", Key: string(rune('a' + i)), Status: pipeline.RunPending, CreatedAt: created, UpdatedAt: created}
		stored, _, err := l.CreateRun(ctx, r, []pipeline.StepRun{{RunID: r.ID, Step: "s", Status: pipeline.StepPending, Generation: 1}})
		if err != nil {
			t.Fatalf("CreateRun: %v", err)
		}
		stored.Status, stored.Notify, stored.FinishedAt = pipeline.RunSucceeded, n, created.Add(time.Duration(i)*time.Hour)
		if _, err := l.UpdateRun(ctx, stored); err != nil {
			t.Fatalf("UpdateRun: %v", err)
		}
		if n == pipeline.NotifyPending {
			owed = append([]string{r.ID}, owed...) // newest finished first
		}
	}
	// Make it an old file: no index.
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("ledger.runs.notify")) }); err != nil {
		t.Fatalf("drop index: %v", err)
	}
	l2, err := boltledger.New(db)
	if err != nil {
		t.Fatalf("New on the old file: %v", err)
	}
	got, err := l2.ListRuns(ctx, pipeline.RunFilter{NotifyPending: true})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if len(ids) != len(owed) || ids[0] != owed[0] || ids[1] != owed[1] {
		t.Fatalf("owed runs %v, want %v", ids, owed)
	}
	_ = db.Close()
}

// The namespace is an id stored in the file: the same after reopening, and
// different for another file.
func TestNamespaceIsStoredInTheFile(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) string {
		t.Helper()
		l, err := boltledger.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Namespace()
	}
	a, again, b := open("a.db"), open("a.db"), open("b.db")
	if a == "" || a != again || a == b {
		t.Fatalf("namespaces: a %q, a reopened %q, b %q", a, again, b)
	}
}
