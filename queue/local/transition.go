package local

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TransitionWrites prepares the queue's part of a step transition committed
// in a transaction that the caller shares with the ledger (the same bbolt
// file): enqueueing tasks (a name pending or used less than DedupWindow ago
// is skipped, as Enqueue does) and deleting handled, the task whose delivery
// is being handled, when it is in flight from this queue with the same run,
// step, generation and check (any other name is left alone). The deletions
// of earlier deliveries waiting for a commit ride along.
//
// write runs inside the transaction; it may run more than once (a shared
// commit rolled back) and is idempotent. after must be called exactly once,
// when the transaction has committed (true) or failed or written nothing of
// the queue's (false): only then are the new tasks handed to the dispatcher,
// and after a failure nothing is lost: the handled task stays pending in the
// file and in memory, and the waiting deletions are kept for the next commit.
func (q *Queue) TransitionWrites(tasks []pipeline.Task, handled pipeline.Task) (write func(*bbolt.Tx) error, after func(committed bool), err error) {
	for _, t := range tasks {
		if err := validate(t); err != nil {
			return nil, nil, fmt.Errorf("local queue: enqueue %s: %w", t.Name, err)
		}
	}
	now := time.Now()
	recs := make([]*record, len(tasks))
	bufs := make([][]byte, len(tasks))
	for i, t := range tasks {
		recs[i] = &record{Name: t.Name, Payload: t.Payload, Deadline: deadline(t.Deadline), Created: now, ETA: now.Add(max(t.Delay, 0))}
		if bufs[i], err = encodeTask(recs[i]); err != nil {
			return nil, nil, fmt.Errorf("local queue: enqueue %s: %w", t.Name, err)
		}
	}
	inserted := make([]bool, len(recs))

	done := q.takeDone()
	finish := done
	q.mu.Lock()
	self := q.flying[handled.Name]
	if self != nil && !sameTask(self.Payload, handled.Payload) {
		self = nil
	}
	q.mu.Unlock()
	if self != nil {
		finish = append(done[:len(done):len(done)], finished{name: self.Name, runID: self.Payload.RunID, at: now})
	}

	write = func(tx *bbolt.Tx) error {
		if err := finishTasks(tx, finish, now, q.cfg.DedupWindow, &q.sweep); err != nil {
			return err
		}
		for i, r := range recs {
			var err error
			if inserted[i], err = insertTask(tx, r, bufs[i], now, q.cfg.DedupWindow, &q.sweep); err != nil {
				return err
			}
		}
		return nil
	}
	after = func(committed bool) {
		if !committed {
			q.giveBackDone(done)
			return
		}
		pushed := false
		q.mu.Lock()
		if self != nil && q.flying[self.Name] == self {
			// Its delivery is still under way: when it ends, the task is
			// forgotten without another write (see settle).
			self.deleted = true
		}
		for i, r := range recs {
			if inserted[i] {
				q.tasks.push(r)
				pushed = true
			}
		}
		q.mu.Unlock()
		if pushed {
			q.poke()
		}
	}
	return write, after, nil
}

// sameTask reports whether two payloads name the same delivery: run, step,
// generation and check.
func sameTask(a, b pipeline.TaskPayload) bool {
	return a.RunID == b.RunID && a.Step == b.Step && a.Generation == b.Generation && a.Check == b.Check
}

// settle ends r's delivery bookkeeping: it is no longer in flight by name. It
// reports whether r's deletion was already committed by a transition (see
// TransitionWrites), in which case the delivery's outcome changes nothing and
// r is forgotten.
func (q *Queue) settle(r *record) (deleted bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.flying[r.Name] == r {
		delete(q.flying, r.Name)
	}
	if r.deleted {
		r.deleted = false
		q.inflight--
		return true
	}
	return false
}
