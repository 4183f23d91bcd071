package discord

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// shutdownFlush bounds the last catch-up pass when Run's context ends.
const shutdownFlush = 3 * time.Second

// Run is the background worker: it brings each dirty run's live message up to
// the ledger, at most one edit per run at a time and per EditInterval, the
// latest state winning, and retries runs Discord could not take (outages,
// 429s) with backoff until it does. It returns nil when ctx ends, after one
// last bounded pass over the runs still dirty.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		ids, next := n.takeDue(false)
		for i, id := range ids {
			if ctx.Err() != nil {
				for _, rest := range ids[i:] {
					n.requeue(rest, 0)
				}
				break
			}
			n.sync(ctx, id)
		}
		if len(ids) > 0 {
			continue
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), time.Millisecond))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			n.flush(ctx)
			return nil
		case <-n.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// flush makes one last bounded pass over every dirty run.
func (n *Notifier) flush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlush)
	defer cancel()
	ids, _ := n.takeDue(true)
	for _, id := range ids {
		if fctx.Err() != nil {
			n.requeue(id, 0)
			continue
		}
		n.sync(fctx, id)
	}
}

// markDirty queues a run for the worker without blocking.
func (n *Notifier) markDirty(runID string) {
	n.mu.Lock()
	switch p := n.dirty[runID]; {
	case p == nil:
		due := n.cfg.Now()
		if t, ok := n.lastSync[runID]; ok {
			due = later(due, t.Add(n.cfg.EditInterval))
		}
		n.dirty[runID] = &pending{due: due}
	case p.taken:
		p.again = true // being synced: sync once more after it
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// takeDue takes the runs due now (all of them if all), and tells when the
// next one is due.
func (n *Notifier) takeDue(all bool) (ids []string, next time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Now()
	ready := n.client.limiter.ready()
	for id, p := range n.dirty {
		if p.taken {
			continue
		}
		due := later(p.due, ready)
		if all || !due.After(now) {
			p.taken = true
			ids = append(ids, id)
			continue
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	// Forget old sync times so the map stays small.
	for id, t := range n.lastSync {
		if now.Sub(t) > n.cfg.EditInterval {
			delete(n.lastSync, id)
		}
	}
	return ids, next
}

// sync brings one run's live message up to date, or requeues it.
func (n *Notifier) sync(ctx context.Context, runID string) {
	ctx, cancel := context.WithTimeout(ctx, 2*n.cfg.FinalBudget)
	defer cancel()
	r, err := n.cfg.Store.GetRun(ctx, runID)
	if err == nil {
		_, err = n.syncLive(ctx, r)
	}
	var perm *permanentError
	switch {
	case err == nil:
		n.done(runID)
	case errors.Is(err, pipeline.ErrNotFound), errors.As(err, &perm):
		n.log.ErrorContext(ctx, "live message not updated; giving up on it", "run", runID, "error", err.Error())
		n.done(runID)
	default:
		n.log.WarnContext(ctx, "live message not updated; will retry", "run", runID, "error", err.Error())
		n.requeue(runID, 1)
	}
}

// done records a sync of runID; a run marked dirty meanwhile is synced again
// after the edit interval.
func (n *Notifier) done(runID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Now()
	n.lastSync[runID] = now
	p := n.dirty[runID]
	if p == nil {
		return
	}
	if !p.again {
		delete(n.dirty, runID)
		return
	}
	*p = pending{due: now.Add(n.cfg.EditInterval)}
}

// requeue puts a taken run back, with backoff after a failure.
func (n *Notifier) requeue(runID string, failed int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.dirty[runID]
	if p == nil {
		p = &pending{}
		n.dirty[runID] = p
	}
	p.taken, p.again = false, false
	p.failures += failed
	if failed > 0 {
		p.due = later(n.cfg.Now().Add(n.client.backoff(min(p.failures, 30))), n.client.outage.due(runID))
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func defaultTransport() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return http.DefaultTransport
}
