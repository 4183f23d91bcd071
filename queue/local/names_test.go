package local

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// The walk forgets every expired name within one pass over the names, a
// batch at a time, resuming where the last write stopped, and keeps the
// names still in their window.
func TestPruneWalkCoversEveryName(t *testing.T) {
	db := tempDB(t)
	now := time.Now()
	const total, batch = 100, 7
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := CreateBuckets(tx); err != nil {
			return err
		}
		for i := range total {
			at := now.Add(-2 * time.Hour) // expired
			if i%3 == 0 {
				at = now // in its window
			}
			if err := useName(tx, fmt.Appendf(nil, "name-%03d", i), at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var sweep nameSweep
	left := func() (n int) {
		_ = db.View(func(tx *bbolt.Tx) error { n = count(tx.Bucket(bucketNames)); return nil })
		return n
	}
	passes := 0
	for {
		if err := db.Update(func(tx *bbolt.Tx) error { return pruneNames(tx, now.Add(-time.Hour), batch, &sweep) }); err != nil {
			t.Fatal(err)
		}
		passes++
		if sweep.from() == nil {
			break // the walk reached the end
		}
		if passes > total {
			t.Fatal("the walk never reached the end of the names")
		}
	}
	kept := (total + 2) / 3
	if n := left(); n != kept {
		t.Errorf("after one walk (%d writes of %d): %d names left, want the %d in their window", passes, batch, n, kept)
	}
	if want := (total + batch - 1) / batch; passes > want+1 {
		t.Errorf("one walk took %d writes, want about %d", passes, want)
	}
}

// A file written before the time index was dropped loses it when the queue
// opens it; its used names still deduplicate.
func TestLegacyNameIndexIsDropped(t *testing.T) {
	db := tempDB(t)
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := CreateBuckets(tx); err != nil {
			return err
		}
		legacy, err := tx.CreateBucket(legacyNameTimes)
		if err != nil {
			return err
		}
		if err := legacy.Put(append(timeKey(time.Now()), "used"...), nil); err != nil {
			return err
		}
		return useName(tx, []byte("used"), time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, db, Config{})
	_ = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(legacyNameTimes) != nil {
			t.Error("the legacy name index is still there")
		}
		return nil
	})
	enqueue(t, q, task("used", "s")) // refused without an error
	if n := q.Pending(); n != 0 {
		t.Errorf("a name used a moment ago was accepted again: %d pending", n)
	}
}
