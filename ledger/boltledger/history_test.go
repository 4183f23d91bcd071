package boltledger_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

// TestStepWithoutHistoryShowsLastAttempt reads a step record written before
// steps kept a history: it shows its last attempt, and the next attempt is
// added after it.
func TestStepWithoutHistoryShowsLastAttempt(t *testing.T) {
	ctx := context.Background()
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "pipeline.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	l, err := boltledger.New(db)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	r := pipeline.Run{ID: "daily@2026-11-23", Pipeline: "daily", Key: "2026-11-23", Date: "2026-11-23", Status: pipeline.RunRunning, CreatedAt: t0}
	if _, _, err := l.CreateRun(ctx, r, []pipeline.StepRun{{RunID: r.ID, Step: "load", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3}}); err != nil {
		t.Fatal(err)
	}
	ss, err := l.GetSteps(ctx, r.ID, "load")
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0]
	s.Status, s.Attempts, s.StartedAt, s.FinishedAt, s.Error = pipeline.StepRetrying, 2, t0.Add(time.Second), t0.Add(2*time.Second), "boom"
	if _, err := l.UpdateStep(ctx, s); err != nil {
		t.Fatal(err)
	}

	// Make it an old record: the stored JSON without "history".
	stripped := 0
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("ledger.steps")).ForEach(func(k, v []byte) error {
			var rec map[string]json.RawMessage
			if err := json.Unmarshal(v[8:], &rec); err != nil {
				return err
			}
			if _, ok := rec["history"]; !ok {
				return nil
			}
			delete(rec, "history")
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			stripped++
			return tx.Bucket([]byte("ledger.steps")).Put(k, append(append([]byte{}, v[:8]...), b...))
		})
	})
	if err != nil || stripped != 1 {
		t.Fatalf("stripping the history: %d records, %v", stripped, err)
	}

	ss, err = l.GetSteps(ctx, r.ID, "load")
	if err != nil {
		t.Fatal(err)
	}
	old := ss[0]
	want := pipeline.Attempt{N: 2, Generation: 1, Status: pipeline.StepRetrying, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second), Error: "boom"}
	if len(old.History) != 1 || old.History[0] != want {
		t.Fatalf("old record's history = %+v, want [%+v]", old.History, want)
	}

	old.Status, old.Attempts, old.StartedAt, old.FinishedAt = pipeline.StepRunning, 3, t0.Add(time.Minute), time.Time{}
	if _, err := l.UpdateStep(ctx, old); err != nil {
		t.Fatal(err)
	}
	run, err := l.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := run.Steps[0].History
	if len(h) != 2 || h[0] != want || h[1].N != 3 || h[1].Status != pipeline.StepRunning {
		t.Fatalf("history after the next attempt = %+v", h)
	}
}
