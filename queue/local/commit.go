package local

import (
	"sync"

	"go.etcd.io/bbolt"
)

// groupCommitter commits writes in groups without waiting: a caller that
// finds no commit under way leads one, taking every write queued so far;
// writes that arrive meanwhile queue up, and when the commit is done the
// first of them leads the next group. An idle queue thus commits at once
// (bbolt's DB.Batch waits MaxBatchDelay, which Go's timers round up to about
// a millisecond in an idle process) and a busy one shares each commit's
// fsyncs among all the writes that arrived during the previous one.
type groupCommitter struct {
	db *bbolt.DB

	mu      sync.Mutex
	queue   []*write
	leading bool
}

type write struct {
	fn   func(*bbolt.Tx) error
	done chan result // capacity 1
}

type result struct {
	err  error
	lead bool // not a result: the receiver leads the next group
}

// Commit runs fn in a write transaction shared with other writes and returns
// once that transaction is committed. fn may run more than once (when another
// write of its group fails), so it must be idempotent.
func (c *groupCommitter) Commit(fn func(*bbolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan result, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, w)
	if c.leading {
		c.mu.Unlock()
		if r := <-w.done; !r.lead {
			return r.err
		}
		c.mu.Lock()
	}
	c.leading = true
	group := c.queue
	c.queue = nil
	c.mu.Unlock()

	c.run(group) // w is in the group

	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].done <- result{lead: true}
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	return (<-w.done).err
}

// run commits a group; a write whose fn fails gets its error and the rest
// are retried without it.
func (c *groupCommitter) run(group []*write) {
	for len(group) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, w := range group {
				if err := w.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range group {
				w.done <- result{err: err}
			}
			return
		}
		group[failed].done <- result{err: err}
		group = append(group[:failed], group[failed+1:]...)
	}
}
