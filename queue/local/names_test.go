package local

import (
	"fmt"
	"net/http"
	"strings"
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
			if err := useName(tx, "daily@2026-01-02", fmt.Sprintf("name-%03d", i), at); err != nil {
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
		// Names were keyed by the name alone then.
		return tx.Bucket(bucketNames).Put([]byte("used"), timeKey(time.Now()))
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
		t.Errorf("a name used a moment ago (recorded by name alone) was accepted again: %d pending", n)
	}
}

// A used name is recorded under its run, so that the names of a run sit
// side by side (one leaf page for a chain's names, not one page per name),
// and is still refused for the window.
func TestUsedNamesAreKeyedUnderTheirRun(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	db := tempDB(t)
	q := newQueue(t, db, Config{BaseURL: srv.URL, Concurrency: 1})
	stop := run(t, q)
	names := []string{"f3a1-s0-g1", "07bc-s1-g1", "c9d2-s2-g1", "1e44-s3-g1"} // hashes: no order of their own
	for _, n := range names {
		enqueue(t, q, task(n, "s"))
		srv.next(t)
	}
	waitIdle(t, q)
	stop() // commits the last deletions
	var keys []string
	_ = db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketNames).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	})
	if len(keys) != len(names) {
		t.Fatalf("used names %q, want %d", keys, len(names))
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "daily@2026-01-02\x00") {
			t.Errorf("used name stored as %q, not under its run", k)
		}
	}
	q2 := newQueue(t, db, Config{BaseURL: srv.URL})
	run(t, q2)
	for _, n := range names {
		enqueue(t, q2, task(n, "s"))
	}
	srv.none(t, q2)
}

// Names recorded by the name alone (before 2026-12-02) are looked up only
// while some may remain: from the open of a file that holds used names until
// a pass of the walk from the first name to the last meets none. A fresh
// file never looks them up.
func TestLegacyNameLookupsEndAfterACleanPass(t *testing.T) {
	if q := newQueue(t, tempDB(t), Config{}); q.sweep.mayHoldLegacy() {
		t.Error("a fresh file: legacy names may remain, want none")
	}

	db := tempDB(t)
	now := time.Now()
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := CreateBuckets(tx); err != nil {
			return err
		}
		for i := range 20 {
			if err := useName(tx, "daily@2026-01-02", fmt.Sprintf("name-%03d", i), now); err != nil {
				return err
			}
		}
		// Recorded by the name alone, in its window.
		return tx.Bucket(bucketNames).Put([]byte("old"), timeKey(now))
	})
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, db, Config{})
	if !q.sweep.mayHoldLegacy() {
		t.Fatal("a file with used names: want legacy names possible until a walk has seen them all")
	}
	// pass walks from the first name to the last, 3 names per write, with
	// cutoff: names used before it are forgotten.
	pass := func(cutoff time.Time) {
		t.Helper()
		for i := 0; ; i++ {
			if err := db.Update(func(tx *bbolt.Tx) error { return pruneNames(tx, cutoff, 3, &q.sweep) }); err != nil {
				t.Fatal(err)
			}
			if q.sweep.from() == nil {
				return
			}
			if i > 100 {
				t.Fatal("the walk never reached the end of the names")
			}
		}
	}
	pass(now.Add(-time.Hour)) // "old" is in its window: kept, and seen
	if !q.sweep.mayHoldLegacy() {
		t.Fatal("a pass met a name recorded by the name alone; want lookups by name alone to go on")
	}
	enqueue(t, q, task("old", "s")) // refused without an error: still in its window
	if n := q.Pending(); n != 0 {
		t.Fatalf("a legacy name in its window was accepted again: %d pending", n)
	}
	pass(now.Add(time.Second)) // every name expired: forgotten ("old" among them)
	if !q.sweep.mayHoldLegacy() {
		t.Fatal("the pass that forgot the legacy name met it; want lookups to go on until a pass meets none")
	}
	pass(now.Add(time.Second)) // nothing left to meet
	if q.sweep.mayHoldLegacy() {
		t.Error("a whole pass met no name recorded by the name alone; want lookups by name alone to stop")
	}
}
