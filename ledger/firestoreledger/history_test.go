package firestoreledger_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

// TestStepWithoutHistoryShowsLastAttempt reads a step document written
// before steps kept a history: it shows its last attempt, and the next
// attempt is added after it.
func TestStepWithoutHistoryShowsLastAttempt(t *testing.T) {
	ctx := context.Background()
	client, _ := fsemu.NewClient(t)
	coll := fsemu.Collection(t)
	l := firestoreledger.New(client, coll)
	r, steps := newRun("2026-11-23", t0, "load")
	mustCreate(t, l, r, steps)
	s := getStep(t, l, r.ID, "load")
	s.Status, s.Attempts, s.StartedAt, s.FinishedAt, s.Error = pipeline.StepRetrying, 2, t0.Add(time.Second), t0.Add(2*time.Second), "boom"
	if _, err := l.UpdateStep(ctx, s); err != nil {
		t.Fatal(err)
	}
	// Make it an old document: no history field at all.
	ref := client.Collection(coll).Doc(r.ID).Collection("steps").Doc("load")
	if _, err := ref.Update(ctx, []firestore.Update{{Path: "history", Value: firestore.Delete}}); err != nil {
		t.Fatal(err)
	}
	snap, err := ref.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Data()["history"]; ok {
		t.Fatal("the document still has a history field")
	}

	old := getStep(t, l, r.ID, "load")
	want := pipeline.Attempt{N: 2, Generation: 0, Status: pipeline.StepRetrying, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second), Error: "boom"}
	if len(old.History) != 1 || old.History[0] != want {
		t.Fatalf("old document's history = %+v, want [%+v]", old.History, want)
	}

	old.Status, old.Attempts, old.StartedAt, old.FinishedAt = pipeline.StepRunning, 3, t0.Add(time.Minute), time.Time{}
	if _, err := l.UpdateStep(ctx, old); err != nil {
		t.Fatal(err)
	}
	got := getStep(t, l, r.ID, "load")
	if len(got.History) != 2 || got.History[0] != want || got.History[1].N != 3 || got.History[1].Status != pipeline.StepRunning {
		t.Fatalf("history after the next attempt = %+v", got.History)
	}
}
