package local

import (
	"bytes"
	"fmt"
	"sync"
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
type nameSweep struct {
	mu   sync.Mutex
	next []byte
}

func (s *nameSweep) from() []byte {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

func (s *nameSweep) resume(at []byte) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = at
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
	if from := sweep.from(); from != nil {
		k, v = c.Seek(from)
	} else {
		k, v = c.First()
	}
	var expired [][]byte
	for seen := 0; k != nil && seen < n; k, v = c.Next() {
		seen++
		if len(v) == len(limit) && bytes.Compare(v, limit) < 0 {
			expired = append(expired, bytes.Clone(k))
		}
	}
	sweep.resume(bytes.Clone(k)) // nil past the last name: start over
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
