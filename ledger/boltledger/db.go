package boltledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Settings of OpenDB.
const (
	// LockTimeout is how long OpenDB waits for another process to release the
	// file.
	LockTimeout = 2 * time.Second
	// MaxBatchDelay is set on the DB for users of DB.Batch: how long a write
	// waits for others to share its commit. The ledger does not use it (see
	// Committer): a sub-millisecond timer in an idle process here fires after
	// 1-3 ms, so DB.Batch costs that on every idle write.
	MaxBatchDelay = 200 * time.Microsecond
	// initialMmapSize is mapped up front so that growing the file rarely has to
	// wait for readers to remap; it is address space, not memory.
	initialMmapSize = 128 << 20
)

// OpenDB opens or creates the bbolt file at path (making its directory),
// ready to be shared by the ledger (New) and the local queue. Only one process
// can hold the file: OpenDB fails after LockTimeout if another does.
func OpenDB(path string) (*bbolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltledger: open %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         LockTimeout,
		NoFreelistSync:  true, // rebuilt on open; saves a write per commit
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
		NoStatistics:    true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltledger: open %s: another pipeline process holds the file (waited %s): %w", path, LockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltledger: open %s: %w", path, err)
	}
	db.MaxBatchDelay = MaxBatchDelay
	return db, nil
}
