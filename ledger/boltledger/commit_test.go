package boltledger_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

func TestCommitterCommitsEveryWrite(t *testing.T) {
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	bucket := []byte("c")
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		t.Fatal(err)
	}
	c := boltledger.NewCommitter(db)
	boom := errors.New("boom")
	const writers, each = 40, 25
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Appendf(nil, "w%02d-%02d", w, i)
				err := c.Batch(func(tx *bbolt.Tx) error {
					if err := tx.Bucket(bucket).Put(key, []byte("v")); err != nil {
						return err
					}
					if w%10 == 0 && i%5 == 0 {
						return fmt.Errorf("writer %d: %w", w, boom) // after a write: must roll back
					}
					return nil
				})
				failing := w%10 == 0 && i%5 == 0
				if failing != errors.Is(err, boom) || (!failing && err != nil) {
					errs[w] = fmt.Errorf("write %d: %v (failing=%t)", i, err, failing)
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", w, err)
		}
	}
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for w := range writers {
			for i := range each {
				failing := w%10 == 0 && i%5 == 0
				if got := b.Get(fmt.Appendf(nil, "w%02d-%02d", w, i)) != nil; got == failing {
					t.Errorf("key w%02d-%02d stored=%t, want %t", w, i, got, !failing)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCommitterPanicStaysWithItsWriter(t *testing.T) {
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	c := boltledger.NewCommitter(db)
	var wg sync.WaitGroup
	var recovered any
	wg.Go(func() {
		defer func() { recovered = recover() }()
		_ = c.Batch(func(*bbolt.Tx) error { panic("writer bug") })
	})
	for i := range 10 {
		wg.Go(func() {
			err := c.Batch(func(tx *bbolt.Tx) error {
				_, err := tx.CreateBucketIfNotExists(fmt.Appendf(nil, "ok%d", i))
				return err
			})
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if recovered != "writer bug" {
		t.Errorf("panicking writer recovered %v, want its own panic", recovered)
	}
}

// TestLedgerWritesSurviveRolledBackBatches mixes ledger writes with failing
// writes on the same Committer, so that shared transactions roll back and the
// ledger's write functions run again: each step must end with exactly one
// version increment per successful UpdateStep.
func TestLedgerWritesSurviveRolledBackBatches(t *testing.T) {
	ctx, l := t.Context(), openTemp(t)
	r := pipeline.Run{ID: "p@k", Pipeline: "p", Key: "k"}
	names := make([]string, 10)
	steps := make([]pipeline.StepRun, len(names))
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
		steps[i] = pipeline.StepRun{RunID: r.ID, Step: names[i], Status: pipeline.StepPending}
	}
	if _, _, err := l.CreateRun(ctx, r, steps); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	const writes = 20
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 { // failing writers, rolling back the batches they join
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = l.Committer().Batch(func(*bbolt.Tx) error { return errors.New("roll back") })
			}
		})
	}
	var writers sync.WaitGroup
	for i := range names {
		writers.Go(func() {
			s := pipeline.StepRun{RunID: r.ID, Step: names[i], Version: 1}
			for w := range writes {
				s.Attempts = w + 1
				next, err := l.UpdateStep(ctx, s)
				if err != nil {
					t.Errorf("step %s write %d: %v", names[i], w, err)
					return
				}
				s = next
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	got, err := l.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	for _, s := range got.Steps {
		if s.Version != 1+writes || s.Attempts != writes {
			t.Errorf("step %s: Version %d Attempts %d, want %d %d", s.Step, s.Version, s.Attempts, 1+writes, writes)
		}
	}
}
