package boltledger

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"
)

// maxBatch caps the writes of one commit.
const maxBatch = 1000

// Internal answers to a waiting writer.
var (
	// errLead hands the next commit to the first waiting writer.
	errLead = errors.New("boltledger: lead the next commit")
	// errSolo asks a writer whose function failed to run it in its own
	// transaction, so that its error is its own.
	errSolo = errors.New("boltledger: run alone")
)

// Committer is group commit for a bbolt file without a timer: a write that
// finds no commit in flight commits at once; writes that arrive while one is
// in flight share the next commit (one fsync for all). Idle latency is one
// commit and throughput grows with concurrency.
//
// DB.Batch, by contrast, waits MaxBatchDelay before every commit, and on this
// kind of machine a sub-millisecond timer wakes an idle process only after
// 2-4 ms; with a zero delay it hardly batches at all.
//
// Its Batch method has DB.Batch's signature and semantics, so the ledger and
// the local queue can share one Committer and with it their commits (see
// Ledger.Committer).
type Committer struct {
	db      *bbolt.DB
	mu      sync.Mutex
	pending []call
	leading bool // a writer is committing; invariant: pending != nil => leading
	// commits counts the transactions committed.
	commits atomic.Uint64
}

type call struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// NewCommitter returns a Committer writing to db.
func NewCommitter(db *bbolt.DB) *Committer {
	return &Committer{db: db}
}

// Batch runs fn in a read-write transaction shared with concurrent writers and
// returns when that transaction is committed. As with DB.Batch, fn may run more
// than once (when another function of the shared transaction fails, it is
// rolled back and the rest run again), so fn must be idempotent; a function
// that returns an error is rerun alone and its error returned.
func (c *Committer) Batch(fn func(*bbolt.Tx) error) error {
	me := call{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, me)
	if c.leading {
		c.mu.Unlock()
		if err := <-me.done; err != errLead {
			return c.result(fn, err)
		}
	} else {
		c.leading = true
		c.mu.Unlock()
	}
	c.lead()
	return c.result(fn, <-me.done)
}

// result turns a writer's answer into Batch's return value.
func (c *Committer) result(fn func(*bbolt.Tx) error, err error) error {
	if err == errSolo {
		return c.update(fn)
	}
	return err
}

// update runs fn in a transaction of its own, counting the commit.
func (c *Committer) update(fn func(*bbolt.Tx) error) error {
	err := c.db.Update(fn)
	if err == nil {
		c.commits.Add(1)
	}
	return err
}

// Commits is the number of transactions the Committer has committed (each
// costs the file's fdatasyncs): what a step costs in commits is a difference
// of two readings.
func (c *Committer) Commits() uint64 { return c.commits.Load() }

// lead commits the pending writes (the caller's among them: it is first) and
// hands the next commit to the first writer that arrived meanwhile.
func (c *Committer) lead() {
	c.mu.Lock()
	batch := c.pending
	if len(batch) > maxBatch {
		batch, c.pending = batch[:maxBatch:maxBatch], batch[maxBatch:]
	} else {
		c.pending = nil
	}
	c.mu.Unlock()

	c.commit(batch)

	c.mu.Lock()
	if len(c.pending) > 0 {
		c.pending[0].done <- errLead
	} else {
		c.leading = false
	}
	c.mu.Unlock()
}

// commit runs calls in one transaction and answers each of them.
func (c *Committer) commit(calls []call) {
	for len(calls) > 0 {
		failed := -1
		err := c.update(func(tx *bbolt.Tx) error {
			for i, cl := range calls {
				if err := safelyCall(cl.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].done <- errSolo
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, cl := range calls {
			cl.done <- err
		}
		return
	}
}

// safelyCall runs fn, turning a panic into an error so that one writer's panic
// does not strand the others (it panics again when rerun alone).
func safelyCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(tx)
}
