package discord

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// errBackingOff is a call not made: Discord failed this run's last call
// during an outage, and its next call is not due yet. The notification stays
// owed (the orchestrator or the sweeper sends it again later).
var errBackingOff = errors.New("discord: backing off after failed calls")

// outage paces calls per run while Discord is failing (5xx, timeouts,
// refused connections). Once a request for a run has used up its retries,
// Discord is taken to be down: from then on every request makes a single
// attempt (no retries) and each run gets at most one call per interval,
// however many callers (the live-message worker, final notifications from
// handlers and the sweeper) ask. Any answer from Discord other than such a
// failure (success, a 4xx) ends the outage for every run.
type outage struct {
	mu    sync.Mutex
	now   func() time.Time
	every time.Duration
	down  bool
	next  map[string]time.Time // run -> its earliest next call
}

func newOutage(now func() time.Time, every time.Duration) *outage {
	return &outage{now: now, every: every, next: map[string]time.Time{}}
}

// allow says whether a call for run may go now; during an outage a call that
// goes is the run's one call of the interval.
func (o *outage) allow(run string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	if err := o.blocked(run, now); err != nil {
		return err
	}
	if o.down {
		o.next[run] = now.Add(o.every)
	}
	return nil
}

// allowed is allow without taking the call: whether one could go now.
func (o *outage) allowed(run string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.blocked(run, o.now())
}

// blocked is errBackingOff while run's next call is not due. o.mu is held.
func (o *outage) blocked(run string, now time.Time) error {
	if t, ok := o.next[run]; ok && now.Before(t) {
		return fmt.Errorf("%w: run %s's next call is due in %s", errBackingOff, run, t.Sub(now).Round(time.Second))
	}
	return nil
}

// retries is how many retries a request for a run may make now.
func (o *outage) retries(max int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		return 0
	}
	return max
}

// failed records a request for run that gave up on a transient failure.
func (o *outage) failed(run string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = true
	o.next[run] = o.now().Add(o.every)
}

// answered records an answer from Discord: the outage, if any, is over.
func (o *outage) answered() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = false
	clear(o.next)
}

// due is when run's next call may go (zero: now).
func (o *outage) due(run string) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next[run]
}
