package pipeline

import (
	"context"
	"sync"
	"time"
)

// maxReservations bounds the claims handed off and not yet delivered that
// one orchestrator keeps; beyond it, hand-offs stop claiming (the
// successors claim on delivery, one commit more).
const maxReservations = 4096

// resKey names the one delivery a reservation is for.
type resKey struct {
	run, step string
	gen       int
}

func keyOf(s StepRun) resKey { return resKey{run: s.RunID, step: s.Step, gen: s.Generation} }

// reservation is a successor's claim written by its predecessor's hand-off
// in this process, waiting for the successor's delivery.
type reservation struct {
	// ready is closed once the hand-off's commit returned: then claimed and
	// ok are set.
	ready   chan struct{}
	claimed StepRun
	ok      bool
}

// reservations are the claims this process handed off and has not yet run
// (in memory only: a restarted process holds none). A delivery of the step
// that finds the stored record is the claim it holds runs the body without
// a claim commit of its own; any other holder of a handed-off claim (another
// process, or this one after a restart) sees a held lease, as for any claim.
type reservations struct {
	mu     sync.Mutex
	m      map[resKey]*reservation
	max    int
	closed bool
}

func newReservations(max int) *reservations {
	return &reservations{m: make(map[resKey]*reservation), max: max}
}

// hold makes room for the claims of keys before a hand-off's transaction,
// so that a successor delivered before the hand-off returns waits for it
// rather than seeing a lease it does not know it holds. It returns nil,
// claiming nothing, when closed, full, or a key is already held.
func (r *reservations) hold(now time.Time, keys []resKey) []*reservation {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if len(r.m)+len(keys) > r.max {
		r.pruneLocked(now)
		if len(r.m)+len(keys) > r.max {
			return nil
		}
	}
	for _, k := range keys {
		if res := r.m[k]; res != nil && !r.staleLocked(res, now) {
			return nil
		}
	}
	out := make([]*reservation, len(keys))
	for i, k := range keys {
		out[i] = &reservation{ready: make(chan struct{})}
		r.m[k] = out[i]
	}
	return out
}

// pruneLocked forgets the claims whose lease expired undelivered: their
// steps are taken over by the next delivery, as any expired claim.
func (r *reservations) pruneLocked(now time.Time) {
	for k, res := range r.m {
		if r.staleLocked(res, now) {
			delete(r.m, k)
		}
	}
}

// staleLocked reports whether res is settled and holds no live claim.
func (r *reservations) staleLocked(res *reservation, now time.Time) bool {
	select {
	case <-res.ready:
		return !res.ok || !now.Before(res.claimed.LeaseUntil)
	default:
		return false
	}
}

// settle records the outcome of a held key's hand-off: claimed (ok) or not.
// It reports whether the claim is kept for its delivery; a claim settled
// after close is not, and the caller gives it back.
func (r *reservations) settle(k resKey, res *reservation, claimed StepRun, ok bool) (kept bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.claimed, res.ok = claimed, ok
	close(res.ready)
	if !ok || r.closed {
		if r.m[k] == res {
			delete(r.m, k)
		}
		return false
	}
	return true
}

// take hands the reservation of cur's step to its caller, once, if cur (as
// read, its lease held) is the claim it holds: then the caller (the step's
// delivery, or a cancel) owns that claim, whose body has not run. A reservation whose hand-off is still
// committing is waited for (until ctx ends). A reservation that is not cur
// (the record changed since) is forgotten.
func (r *reservations) take(ctx context.Context, cur StepRun) bool {
	k := keyOf(cur)
	r.mu.Lock()
	res := r.m[k]
	r.mu.Unlock()
	if res == nil {
		return false
	}
	select {
	case <-res.ready:
	default:
		select {
		case <-res.ready:
		case <-ctx.Done():
			return false
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[k] != res {
		return false // taken meanwhile
	}
	delete(r.m, k)
	return res.ok && res.claimed.Version == cur.Version
}

// drain closes the reservations and returns the claims still held, for the
// caller to give back. Hand-offs committing now are given back by their own
// callers (settle reports them not kept).
func (r *reservations) drain() []StepRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var out []StepRun
	for k, res := range r.m {
		select {
		case <-res.ready:
			if res.ok {
				out = append(out, res.claimed)
			}
			delete(r.m, k)
		default:
		}
	}
	return out
}

// held returns how many reservations are held (for tests).
func (r *reservations) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}
