package local

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestUsedNamesArePruned(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	db := tempDB(t)
	q := newQueue(t, db, Config{BaseURL: srv.URL, DedupWindow: time.Nanosecond, Concurrency: 1})
	stop := run(t, q)
	const tasks = 200
	for i := range tasks {
		enqueue(t, q, task(fmt.Sprintf("n%03d", i), "s"))
	}
	for range tasks {
		srv.next(t)
	}
	waitIdle(t, q)
	stop() // commits the last deletions
	var names, pending int
	err := db.View(func(tx *bbolt.Tx) error {
		names, pending = count(tx.Bucket(bucketNames)), count(tx.Bucket(bucketTasks))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every finish examines more used names than it adds and forgets the
	// expired ones, so they do not pile up.
	if names > pruneBatch || pending != 0 {
		t.Errorf("after %d tasks: %d used names, %d stored tasks", tasks, names, pending)
	}
}

func TestExpiredNameIsReusableBeforePrune(t *testing.T) {
	db := tempDB(t)
	now := time.Now()
	r := &record{Name: "x", Created: now}
	buf, err := encodeTask(r)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := CreateBuckets(tx); err != nil {
			return err
		}
		for i, c := range []struct {
			at   time.Time
			want bool
		}{
			{now, true},                     // new
			{now.Add(time.Minute), false},   // pending
			{now.Add(2 * time.Hour), false}, // still pending, even past the window
		} {
			got, err := insertTask(tx, r, buf, c.at, time.Hour, nil)
			if err != nil {
				return err
			}
			if got != c.want {
				t.Errorf("insert %d: inserted = %v, want %v", i, got, c.want)
			}
		}
		end := now.Add(3 * time.Hour)
		if err := finishTasks(tx, []finished{{name: "x", runID: r.Payload.RunID, at: end}}, end, time.Hour, nil); err != nil {
			return err
		}
		for i, c := range []struct {
			at   time.Time
			want bool
		}{
			{now.Add(3*time.Hour + time.Minute), false}, // finished within the window
			{now.Add(4*time.Hour + time.Second), true},  // window over
		} {
			got, err := insertTask(tx, r, buf, c.at, time.Hour, nil)
			if err != nil {
				return err
			}
			if got != c.want {
				t.Errorf("insert after finish %d: inserted = %v, want %v", i, got, c.want)
			}
		}
		if n := count(tx.Bucket(bucketNames)); n != 1 {
			t.Errorf("%d names, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// count counts a bucket's keys (Stats does not see a write transaction's
// uncommitted changes).
func count(b *bbolt.Bucket) int {
	n := 0
	_ = b.ForEach(func(_, _ []byte) error { n++; return nil })
	return n
}

func TestDeliveredTaskDeletedWhileRunning(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	db := tempDB(t)
	q := newQueue(t, db, Config{BaseURL: srv.URL})
	run(t, q)
	enqueue(t, q, task("one", "s"))
	srv.next(t)
	// No further Enqueue carries the deletion: the flusher commits it.
	deadline := time.Now().Add(guard)
	for {
		var stored int
		if err := db.View(func(tx *bbolt.Tx) error { stored = count(tx.Bucket(bucketTasks)); return nil }); err != nil {
			t.Fatal(err)
		}
		if stored == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("delivered task still stored")
		}
		time.Sleep(time.Millisecond)
	}
	enqueue(t, q, task("one", "s")) // and its name is still used
	srv.none(t, q)
}
