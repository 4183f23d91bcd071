package local

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
)

func TestGroupCommitter(t *testing.T) {
	db := tempDB(t)
	bucket := []byte("queue_test")
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		t.Fatal(err)
	}
	c := &groupCommitter{db: db}
	boom := errors.New("boom")
	const writers = 200
	var mu sync.Mutex
	txs := map[*bbolt.Tx]bool{}
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = c.Commit(func(tx *bbolt.Tx) error {
				mu.Lock()
				txs[tx] = true
				mu.Unlock()
				if i%50 == 7 {
					return boom
				}
				return tx.Bucket(bucket).Put(fmt.Appendf(nil, "k%03d", i), []byte("v"))
			})
		})
	}
	wg.Wait()
	stored := 0
	if err := db.View(func(tx *bbolt.Tx) error { stored = count(tx.Bucket(bucket)); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if (i%50 == 7) != errors.Is(err, boom) {
			t.Errorf("write %d: err = %v", i, err)
		}
	}
	if want := writers - writers/50; stored != want {
		t.Errorf("%d keys stored, want %d: a failing write must not sink its group", stored, want)
	}
	t.Logf("%d writes in %d transactions (failed ones roll back and rerun their group)", writers, len(txs))
}
