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
// can hold the file: OpenDB fails after LockTimeout if another does. A file
// it creates is made durable with its name: the directories it created and
// the one it created them in are synced too (see newEntries).
func OpenDB(path string) (*bbolt.DB, error) {
	return openDB(path, syncDir)
}

func openDB(path string, sync func(dir string) error) (*bbolt.DB, error) {
	created, err := newEntries(path)
	if err != nil {
		return nil, fmt.Errorf("boltledger: open %s: %w", path, err)
	}
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
	// bbolt fsyncs a new file's first pages but not its directory entry:
	// after a power loss the file (with everything committed to it) could
	// be gone. Each directory that gained an entry is synced, deepest first.
	for _, dir := range created {
		if err := sync(dir); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("boltledger: open %s: sync directory %s: %w", path, dir, err)
		}
	}
	return db, nil
}

// newEntries lists the directories that gain an entry when path is created
// with its missing parents, deepest first: path's directory, and each
// missing directory's parent. Empty when path exists.
func newEntries(path string) ([]string, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var dirs []string
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		dirs = append(dirs, dir)
		_, err := os.Lstat(dir)
		if err == nil || filepath.Dir(dir) == dir {
			return dirs, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
}

// syncDir fsyncs a directory, making the entries created in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
