package local

import (
	"context"
	"time"

	"go.etcd.io/bbolt"
)

// flushDelay is how long a delivered task's deletion may wait for an Enqueue
// to carry it before the flusher commits it on its own.
const flushDelay = 20 * time.Millisecond

// takeDone hands the uncommitted deletions to the caller, who commits them
// or gives them back.
func (q *Queue) takeDone() []finished {
	q.mu.Lock()
	defer q.mu.Unlock()
	done := q.done
	q.done = nil
	return done
}

func (q *Queue) giveBackDone(done []finished) {
	if len(done) == 0 {
		return
	}
	q.mu.Lock()
	q.done = append(done, q.done...)
	q.mu.Unlock()
}

// flushDone commits the deletions that no Enqueue has carried.
func (q *Queue) flushDone() {
	done := q.takeDone()
	if len(done) == 0 {
		return
	}
	now := time.Now()
	err := q.commit(func(tx *bbolt.Tx) error { return finishTasks(tx, done, now, q.cfg.DedupWindow, &q.sweep) })
	if err != nil {
		q.log.Error("local queue: delivered tasks not deleted; they would be delivered again after a restart",
			"tasks", len(done), "error", err)
		q.giveBackDone(done)
	}
}

// flusher commits delivered tasks' deletions flushDelay after they are
// signalled, until ctx is done.
func (q *Queue) flusher(ctx context.Context) {
	timer := time.NewTimer(flushDelay)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.flush:
		}
		timer.Reset(flushDelay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		q.flushDone()
	}
}
