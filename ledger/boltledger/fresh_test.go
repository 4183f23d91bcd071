package boltledger_test

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/local"
)

// txID is the id of the file's last commit: bbolt numbers commits, and a
// fresh file starts at 1 (its two meta pages).
func txID(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	var id int
	if err := db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatalf("View: %v", err)
	}
	return id
}

// openStore opens the file as serve does: the ledger (creating the queue's
// buckets in its own first transaction) and the local queue sharing it.
func openStore(t *testing.T, path string) (*bbolt.DB, *boltledger.Ledger) {
	t.Helper()
	db, err := boltledger.OpenDB(path)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	l, err := boltledger.New(db, local.CreateBuckets)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := local.New(db, local.Config{Commit: l.Committer().Batch}); err != nil {
		t.Fatalf("local.New: %v", err)
	}
	return db, l
}

// TestFreshFileOneCommit: creating a fresh file's ledger and queue buckets
// costs one commit (each commit is two fdatasyncs), and reopening the file
// costs none and finds what was written.
func TestFreshFileOneCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pipeline.db")
	db, l := openStore(t, path)
	if got := txID(t, db); got != 2 {
		t.Errorf("fresh open: last commit is tx %d, want 2 (one commit after bbolt's init)", got)
	}
	ns := l.Namespace()
	r := pipeline.Run{ID: "daily@2026-03-14", Pipeline: "daily", Key: "2026-03-14", Date: "2026-03-14",
		Status: pipeline.RunRunning, CreatedAt: time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC), Notify: pipeline.NotifyPending}
	steps := []pipeline.StepRun{{RunID: r.ID, Step: "extract", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3}}
	if _, _, err := l.CreateRun(t.Context(), r, steps); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	before := txID(t, db)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db, l = openStore(t, path)
	defer db.Close()
	if got := txID(t, db); got != before {
		t.Errorf("reopen: last commit is tx %d, want %d (no commit to open an existing file)", got, before)
	}
	if got := l.Namespace(); got != ns {
		t.Errorf("reopen: namespace %q, want %q (the file's id)", got, ns)
	}
	if _, err := l.GetRun(t.Context(), r.ID); err != nil {
		t.Errorf("reopen: GetRun: %v", err)
	}
}
