package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

var _ pipeline.Queue = (*Queue)(nil)

// Queue is a durable in-process queue with Cloud Tasks semantics. Enqueue
// works whether or not Run is running; Run delivers.
type Queue struct {
	db     *bbolt.DB
	cfg    Config
	log    *slog.Logger
	commit func(fn func(*bbolt.Tx) error) error

	// wake (capacity 1) tells the dispatcher that the heap changed.
	wake chan struct{}
	// flush (capacity 1) tells the flusher that done has entries.
	flush chan struct{}

	mu       sync.Mutex
	baseURL  string
	tasks    taskHeap
	inflight int
	// flying holds the tasks being delivered, by name.
	flying  map[string]*record
	running bool
	// done holds delivered tasks whose deletion is not committed yet: the
	// next Enqueue commits them with its task, or the flusher shortly after.
	done []finished
	// sweep is where the walk forgetting expired used names resumes.
	sweep nameSweep
}

// New returns a queue storing its tasks in db (which it does not close) and
// loads the tasks left pending there, to be delivered once Run runs.
func New(db *bbolt.DB, cfg Config) (*Queue, error) {
	if db == nil {
		return nil, errors.New("local queue: nil database")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	q := &Queue{db: db, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), flush: make(chan struct{}, 1), baseURL: cfg.BaseURL,
		flying: map[string]*record{}}
	q.commit = cfg.Commit
	if q.commit == nil {
		q.commit = (&groupCommitter{db: db}).Commit
	}
	// A file with the buckets is only read; a fresh one gets them in one
	// commit (none if the ledger's setup created them, see CreateBuckets),
	// as does one written before 2026-12 (its legacy index is dropped).
	var recs []*record
	ready, anyNames := false, false
	err = db.View(func(tx *bbolt.Tx) error {
		if ready = hasBuckets(tx) && tx.Bucket(legacyNameTimes) == nil; ready {
			recs, err = loadTasks(tx)
			anyNames = hasNames(tx)
		}
		return err
	})
	if err == nil && !ready {
		err = db.Update(func(tx *bbolt.Tx) error {
			if err := CreateBuckets(tx); err != nil {
				return err
			}
			if err := dropLegacyIndex(tx); err != nil {
				return err
			}
			recs, err = loadTasks(tx)
			anyNames = hasNames(tx)
			return err
		})
	}
	// Names recorded by the name alone may remain only in a file that
	// holds used names (see nameSweep).
	q.sweep.legacy.Store(anyNames)
	if err != nil {
		return nil, fmt.Errorf("local queue: open: %w", err)
	}
	for _, r := range recs {
		q.tasks.push(r)
	}
	if len(recs) > 0 {
		q.log.Info("local queue: recovered pending tasks", "queue", cfg.QueueName, "tasks", len(recs))
	}
	return q, nil
}

// SetBaseURL sets where tasks are delivered, e.g. once the server's listener
// is bound. Call it before Run.
func (q *Queue) SetBaseURL(u string) {
	q.mu.Lock()
	q.baseURL = u
	q.mu.Unlock()
}

// Pending is the number of tasks waiting or in flight.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tasks) + q.inflight
}

// Enqueue stores t durably and schedules its delivery after t.Delay. A name
// that is pending, or was used less than DedupWindow ago, is not an error:
// Enqueue returns nil and queues nothing. A malformed task is an error
// wrapping pipeline.ErrInvalid.
func (q *Queue) Enqueue(ctx context.Context, t pipeline.Task) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local queue: enqueue %s: %w", t.Name, err)
	}
	if err := validate(t); err != nil {
		return err
	}
	now := time.Now()
	r := &record{
		Name:     t.Name,
		Payload:  t.Payload,
		Deadline: deadline(t.Deadline),
		Created:  now,
		ETA:      now.Add(max(t.Delay, 0)),
	}
	buf, err := encodeTask(r)
	if err != nil {
		return fmt.Errorf("local queue: enqueue %s: %w", t.Name, err)
	}
	done := q.takeDone()
	var inserted bool
	err = q.commit(func(tx *bbolt.Tx) error {
		if err := finishTasks(tx, done, now, q.cfg.DedupWindow, &q.sweep); err != nil {
			return err
		}
		var err error
		inserted, err = insertTask(tx, r, buf, now, q.cfg.DedupWindow, &q.sweep)
		return err
	})
	if err != nil {
		q.giveBackDone(done)
		return fmt.Errorf("local queue: enqueue %s: %w", t.Name, err)
	}
	if !inserted {
		q.log.Debug("local queue: task name already used", "task", t.Name)
		return nil
	}
	q.mu.Lock()
	q.tasks.push(r)
	q.mu.Unlock()
	q.poke()
	return nil
}

// poke wakes the dispatcher without blocking.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func validate(t pipeline.Task) error {
	if !pipeline.ValidTaskID(t.Name) {
		return fmt.Errorf("%w: task name %q must match %s", pipeline.ErrInvalid, t.Name, pipeline.TaskIDPattern)
	}
	if t.Payload.Step == "" {
		return fmt.Errorf("%w: task %s has no step", pipeline.ErrInvalid, t.Name)
	}
	body, err := json.Marshal(t.Payload)
	if err != nil {
		return fmt.Errorf("%w: task %s: %v", pipeline.ErrInvalid, t.Name, err)
	}
	if n := len(t.Name) + len(t.Payload.Path()) + len(body); n > MaxTaskSize {
		return fmt.Errorf("%w: task %s is %d bytes, over the %d-byte limit", pipeline.ErrInvalid, t.Name, n, MaxTaskSize)
	}
	return nil
}

// deadline is the per-delivery timeout: d, or the default, at most MaxDeadline.
func deadline(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultDeadline
	}
	return min(d, MaxDeadline)
}
