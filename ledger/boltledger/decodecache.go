package boltledger

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// recordCache remembers, per key of one bucket, a stored value as read (or
// written) and its decoded form, so that reading the same bytes again costs a
// comparison and a copy instead of a JSON decode. Step and run records are
// read many times per write: a transition's claim, the delivery's read, the
// run's reads when it ends.
//
// It is coherent by construction: a read still gets the stored value from
// bbolt and uses the cached form only when the value is byte-for-byte the one
// cached, so it memoizes a pure function (decode) of the stored bytes and
// needs no invalidation. Deletes, rolled-back transactions, other ledgers over
// the same file and older writers all show up as different bytes (or no
// value), hence as a miss.
//
// Cached values are never changed once put: they are handed out as deep
// copies (callers change what they get), made by the caller outside the lock,
// or lent to a reader that only looks (decoded.stepRead, shared).
//
// It holds at most max entries and evicts the oldest put (FIFO, a ring of
// keys that grows to max): cheap, and a miss only costs the decode it would
// have cost anyway. The zero value with max set is ready; nothing is
// allocated until the first put.
type recordCache[T any] struct {
	max int

	mu      sync.Mutex
	entries map[string]cached[T]
	ring    []string // keys in the order put; entries[ring[next]] is evicted next once full
	next    int

	// hits and misses count lookups (tests and measurements).
	hits, misses atomic.Uint64
}

// cached is a stored value and its decoded form.
type cached[T any] struct {
	raw []byte
	val T
}

// get returns the decoded form of raw, the value stored at key, if it is the
// cached one. The result is shared: the caller copies it before changing it
// or handing it out.
func (c *recordCache[T]) get(key, raw []byte) (T, bool) {
	c.mu.Lock()
	e, ok := c.entries[string(key)]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		c.misses.Add(1)
		var zero T
		return zero, false
	}
	c.hits.Add(1)
	return e.val, true
}

// put makes val the decoded form of raw at key. Both are the cache's from now
// on: the caller must not keep or change them (raw must not be a
// transaction's memory).
func (c *recordCache[T]) put(key string, raw []byte, val T) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		c.entries[key] = cached[T]{raw: raw, val: val} // keeps its place in the ring
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]cached[T])
	}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, key)
	} else {
		delete(c.entries, c.ring[c.next])
		c.ring[c.next] = key
		c.next = (c.next + 1) % c.max
	}
	c.entries[key] = cached[T]{raw: raw, val: val}
}

// len is the number of entries.
func (c *recordCache[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
