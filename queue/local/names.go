package local

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// nameSweep is where the walk that forgets expired used names resumes: each
// write that finishes tasks examines the next names after it (in key order,
// starting over after the last). A name therefore outlives its window by at
// most one walk of bucketNames, and finishing a task writes one key (its
// name), not two (name and a time index: two more page writes in every
// step's commit). It is a hint: a write run twice, or rolled back, only
// moves the walk.
//
// It also tells whether names recorded by the name alone (before
// 2026-12-02, see nameKey) may remain: legacy is set at open when the file
// holds any used name, and cleared once a pass of the walk from the first
// name to the last met none. No such name is written any more, so none can
// come back; until then a lookup tries both keys (usedAt).
type nameSweep struct {
	mu   sync.Mutex
	next []byte
	// clean says the current pass started at the first name and has met no
	// name recorded by the name alone.
	clean  bool
	legacy atomic.Bool
}

func (s *nameSweep) from() []byte {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// resume records where the walk stops (nil: it reached the end); began says
// this walk started at the first name, sawLegacy that it met a name recorded
// by the name alone.
func (s *nameSweep) resume(at []byte, began, sawLegacy bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = at
	if began {
		s.clean = true
	}
	if sawLegacy {
		s.clean = false
	}
	if at == nil {
		if s.clean {
			s.legacy.Store(false)
		}
		s.clean = false
	}
}

// mayHoldLegacy says whether names recorded by the name alone may remain.
func (s *nameSweep) mayHoldLegacy() bool {
	return s == nil || s.legacy.Load()
}

// hasNames says whether tx's file holds any used name.
func hasNames(tx *bbolt.Tx) bool {
	k, _ := tx.Bucket(bucketNames).Cursor().First()
	return k != nil
}

// isLegacyName says whether k, a key of bucketNames, is a name recorded by
// the name alone (no run: no NUL, see nameKey).
func isLegacyName(k []byte) bool {
	return bytes.IndexByte(k, 0) < 0
}

// pruneNames examines at most n used names, from where sweep's walk stands,
// and forgets those used before cutoff. A name still pending (retried beyond
// the window) is deduplicated through bucketTasks; forgetting it is
// harmless.
func pruneNames(tx *bbolt.Tx, cutoff time.Time, n int, sweep *nameSweep) error {
	names := tx.Bucket(bucketNames)
	limit := timeKey(cutoff)
	c := names.Cursor()
	var k, v []byte
	from := sweep.from()
	if from != nil {
		k, v = c.Seek(from)
	} else {
		k, v = c.First()
	}
	var expired [][]byte
	sawLegacy := false
	for seen := 0; k != nil && seen < n; k, v = c.Next() {
		seen++
		sawLegacy = sawLegacy || isLegacyName(k)
		if len(v) == len(limit) && bytes.Compare(v, limit) < 0 {
			expired = append(expired, bytes.Clone(k))
		}
	}
	sweep.resume(bytes.Clone(k), from == nil, sawLegacy) // nil past the last name: start over
	for _, k := range expired {
		if err := names.Delete(k); err != nil {
			return fmt.Errorf("prune name %s: %w", k, err)
		}
	}
	return nil
}

// dropLegacyIndex deletes the time index of used names that files written
// before 2026-12 have (legacyNameTimes).
func dropLegacyIndex(tx *bbolt.Tx) error {
	if tx.Bucket(legacyNameTimes) == nil {
		return nil
	}
	if err := tx.DeleteBucket(legacyNameTimes); err != nil {
		return fmt.Errorf("drop %s: %w", legacyNameTimes, err)
	}
	return nil
}
