package boltledger

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Bucket names; the "ledger." prefix keeps them apart from the queue's in a
// shared file.
var (
	runsBucket    = []byte("ledger.runs")
	stepsBucket   = []byte("ledger.steps")
	byTimeBucket  = []byte("ledger.runs.time")
	byPipelineBkt = []byte("ledger.runs.pipe")
	// notifyBucket indexes the runs whose final notification is owed by
	// finish time (key: finish time, run ID).
	notifyBucket  = []byte("ledger.runs.notify")
	marksBucket   = []byte("ledger.marks")
	ledgerBuckets = [][]byte{runsBucket, stepsBucket, byTimeBucket, byPipelineBkt, marksBucket}
)

// Ledger is a pipeline.Ledger in a bbolt file.
type Ledger struct {
	db     *bbolt.DB
	commit *Committer
	// owned says Close closes db (Open opened it).
	owned bool
	// id is the file's id (see Namespace).
	id string
	// decoded caches the records read, decoded (see recordCache).
	decoded *decoded
}

var _ pipeline.Ledger = (*Ledger)(nil)

// New returns a ledger in db, creating its buckets. Close does not close db,
// which may be shared (see OpenDB).
//
// A file already set up is only read (no commit). A fresh file is set up in
// one commit, in which setup also runs: the other users of the file (the
// local queue's CreateBuckets) create their buckets there instead of in a
// commit of their own. Each setup must be idempotent, and its owner must
// still check its own state when it opens, since setup does not run on a
// file whose ledger is already set up.
func New(db *bbolt.DB, setup ...func(*bbolt.Tx) error) (*Ledger, error) {
	var id string
	err := db.View(func(tx *bbolt.Tx) error {
		id = readyID(tx)
		return nil
	})
	if err == nil && id == "" {
		err = db.Update(func(tx *bbolt.Tx) error {
			for _, name := range ledgerBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("bucket %s: %w", name, err)
				}
			}
			if tx.Bucket(notifyBucket) == nil {
				if err := buildNotifyIndex(tx); err != nil {
					return err
				}
			}
			for _, fn := range setup {
				if err := fn(tx); err != nil {
					return err
				}
			}
			var err error
			id, err = loadID(tx)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("boltledger: init %s: %w", db.Path(), err)
	}
	return &Ledger{db: db, commit: NewCommitter(db), id: id, decoded: newDecoded()}, nil
}

// readyID is the file's id if the ledger is fully set up in it (every
// bucket, the notification index and the id), else "".
func readyID(tx *bbolt.Tx) string {
	for _, name := range append(ledgerBuckets[:len(ledgerBuckets):len(ledgerBuckets)], notifyBucket) {
		if tx.Bucket(name) == nil {
			return ""
		}
	}
	if b := tx.Bucket(metaBucket); b != nil {
		return string(b.Get(idKey))
	}
	return ""
}

// buildNotifyIndex creates the index of owed notifications from the runs (a
// file written before the index existed).
func buildNotifyIndex(tx *bbolt.Tx) error {
	idx, err := tx.CreateBucket(notifyBucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", notifyBucket, err)
	}
	return tx.Bucket(runsBucket).ForEach(func(k, v []byte) error {
		var rec runRecord
		if _, err := decode(v, &rec); err != nil {
			return fmt.Errorf("run %s: %w", k, err)
		}
		if rec.Notify != string(pipeline.NotifyPending) {
			return nil
		}
		return idx.Put(timeIndexKey(rec.FinishedAt, string(k)), nil)
	})
}

// Open opens (or creates) the file at path with OpenDB and returns a ledger
// that owns it: Close closes the file.
func Open(path string) (*Ledger, error) {
	db, err := OpenDB(path)
	if err != nil {
		return nil, err
	}
	l, err := New(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	l.owned = true
	return l, nil
}

// Close closes the file if Open opened it.
func (l *Ledger) Close() error {
	if !l.owned {
		return nil
	}
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("boltledger: close %s: %w", l.db.Path(), err)
	}
	return nil
}

// Committer is the ledger's group committer. Give it to the other users of
// the same file (the local queue) so that their writes share commits with the
// ledger's instead of queueing for the write lock behind them.
func (l *Ledger) Committer() *Committer { return l.commit }

// write runs fn in a commit shared with concurrent writers. fn may run more
// than once, so it must reset what it reports on entry. It reports outcomes
// (not found, conflict) through its caller's variables and returns an error
// only when the transaction must roll back, since an error rolls back the
// whole shared transaction and reruns the others.
func (l *Ledger) write(fn func(tx *bbolt.Tx) error) error {
	return l.commit.Batch(fn)
}
