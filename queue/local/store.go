package local

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Buckets of the queue in the shared database.
var (
	// bucketTasks maps a pending task's name to its record.
	bucketTasks = []byte("queue_tasks")
	// bucketNames maps a used task name, under its run (nameKey), to when
	// its task finished (8-byte big-endian Unix nanoseconds), for dedup; a
	// pending task's name is refused through bucketTasks.
	bucketNames = []byte("queue_names")
	// legacyNameTimes indexed bucketNames by time until 2026-12 (two more
	// page writes per finished task's commit); New deletes it from a file
	// that has it. Expired names are now found by a walk (nameSweep).
	legacyNameTimes = []byte("queue_name_times")
	// bucketDead maps a dead-lettered task's name to its record.
	bucketDead = []byte("queue_dead")
)

// pruneBatch is how many used names one write examines for expiry, besides
// two per task it finishes (so the walk outpaces the names added). Each
// transition's write examines its own, in the single writer of the shared
// commit (about 20 transitions per commit at 50 chains in flight): few.
const pruneBatch = 8

// record is a task as stored, with its delivery state.
type record struct {
	Name     string               `json:"name"`
	Payload  pipeline.TaskPayload `json:"payload"`
	Deadline time.Duration        `json:"deadline"`
	Created  time.Time            `json:"created"`
	// ETA is when the next delivery is due.
	ETA time.Time `json:"eta"`
	// Attempts counts failed deliveries (X-CloudTasks-TaskRetryCount).
	Attempts int `json:"attempts,omitempty"`
	// Responses counts failed deliveries that got an HTTP response
	// (X-CloudTasks-TaskExecutionCount).
	Responses int    `json:"responses,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Dead is when the task was dead-lettered.
	Dead time.Time `json:"dead,omitzero"`
	// deleted says a transition committed the task's deletion while it was
	// being delivered (guarded by Queue.mu; not stored).
	deleted bool
}

// buckets are all the queue's buckets.
var buckets = [][]byte{bucketTasks, bucketNames, bucketDead}

// CreateBuckets creates the queue's buckets in tx if they are missing. Pass
// it to the transaction that sets up a fresh shared file (boltledger.New) so
// that New finds them and does not commit again.
func CreateBuckets(tx *bbolt.Tx) error {
	for _, b := range buckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

// hasBuckets says whether all the queue's buckets exist.
func hasBuckets(tx *bbolt.Tx) bool {
	for _, b := range buckets {
		if tx.Bucket(b) == nil {
			return false
		}
	}
	return true
}

func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(t.UnixNano()))
}

func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
}

// encodeTask is r as stored in bucketTasks: encoded before the transaction
// that inserts it, so that the shared commit's single writer does not spend
// its time in the encoder.
func encodeTask(r *record) ([]byte, error) {
	buf, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode task %s: %w", r.Name, err)
	}
	return buf, nil
}

// nameKey is the key of a used task name in bucketNames: the name under its
// task's run. A name is a hash of its run, step and generation
// (pipeline.TaskNameIn), so the run adds nothing to what is deduplicated; it
// keeps the names of a run, and of the runs in flight, on a few leaf pages,
// where keys by name alone (hashes) put every finished task's name on a page
// of its own: one more page to rewrite and sync in every step's commit.
// Names recorded before 2026-12-02 are keyed by the name alone (no NUL: task
// names are [A-Za-z0-9_-]); lookups still find them while any may remain
// (until a pass of the pruning walk meets none, see nameSweep).
func nameKey(runID, name string) []byte {
	k := make([]byte, 0, len(runID)+1+len(name))
	return append(append(append(k, runID...), 0), name...)
}

// usedAt is when name (of run runID) was last finished, if it is recorded;
// legacy says names recorded by the name alone may remain (nameSweep).
func usedAt(names *bbolt.Bucket, runID, name string, legacy bool) (time.Time, bool) {
	v := names.Get(nameKey(runID, name))
	if v == nil && legacy {
		v = names.Get([]byte(name)) // recorded by name alone (before 2026-12-02)
	}
	if len(v) != 8 {
		return time.Time{}, false
	}
	return keyTime(v), true
}

// insertTask stores r, encoded as buf (encodeTask), unless its name is taken:
// pending, or finished less than window before now (sweep tells whether
// names recorded by the name alone may remain; nil: they may). It is
// idempotent (DB.Batch may run it again).
func insertTask(tx *bbolt.Tx, r *record, buf []byte, now time.Time, window time.Duration, sweep *nameSweep) (inserted bool, err error) {
	name := []byte(r.Name)
	tasks := tx.Bucket(bucketTasks)
	if tasks.Get(name) != nil {
		return false, nil
	}
	if at, ok := usedAt(tx.Bucket(bucketNames), r.Payload.RunID, r.Name, sweep.mayHoldLegacy()); ok && now.Sub(at) < window {
		return false, nil
	}
	// The name is not recorded as used yet: while the task is pending,
	// bucketTasks refuses it; finishTasks records it when the task leaves,
	// which is the later of the two times the window runs from. One write
	// per enqueue instead of three.
	if err := tasks.Put(name, buf); err != nil {
		return false, fmt.Errorf("put task %s: %w", r.Name, err)
	}
	return true, nil
}

// useName records that name, of run runID, was used at t, replacing its
// previous entry.
func useName(tx *bbolt.Tx, runID, name string, t time.Time) error {
	if err := tx.Bucket(bucketNames).Put(nameKey(runID, name), timeKey(t)); err != nil {
		return fmt.Errorf("put name %s: %w", name, err)
	}
	return nil
}

// finished is a delivered task whose deletion is not yet committed.
type finished struct {
	name, runID string
	at          time.Time
}

// finishTasks deletes delivered tasks, keeps their names for dedup from when
// they finished and examines more used names for expiry than it adds
// (resuming sweep's walk; nil walks from the first). It is idempotent.
func finishTasks(tx *bbolt.Tx, done []finished, now time.Time, window time.Duration, sweep *nameSweep) error {
	if len(done) == 0 {
		return nil
	}
	tasks := tx.Bucket(bucketTasks)
	for _, f := range done {
		if err := tasks.Delete([]byte(f.name)); err != nil {
			return fmt.Errorf("delete task %s: %w", f.name, err)
		}
		if err := useName(tx, f.runID, f.name, f.at); err != nil {
			return err
		}
	}
	return pruneNames(tx, now.Add(-window), pruneBatch+2*len(done), sweep)
}

// putTask overwrites a pending task's record (its delivery state).
func putTask(tx *bbolt.Tx, r *record) error {
	buf, err := encodeTask(r)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketTasks).Put([]byte(r.Name), buf); err != nil {
		return fmt.Errorf("put task %s: %w", r.Name, err)
	}
	return nil
}

// buryTask moves a task to the dead-letter bucket.
func buryTask(tx *bbolt.Tx, r *record, window time.Duration, sweep *nameSweep) error {
	buf, err := encodeTask(r)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketDead).Put([]byte(r.Name), buf); err != nil {
		return fmt.Errorf("put dead task %s: %w", r.Name, err)
	}
	return finishTasks(tx, []finished{{name: r.Name, runID: r.Payload.RunID, at: r.Dead}}, r.Dead, window, sweep)
}

// loadTasks reads every pending task.
func loadTasks(tx *bbolt.Tx) ([]*record, error) {
	var out []*record
	err := tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
		r := new(record)
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("decode task %s: %w", k, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}
