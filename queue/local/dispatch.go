package local

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Run delivers tasks until ctx is cancelled, then waits up to
// ShutdownTimeout for the deliveries in flight, cancels those still running
// (they stay pending, uncounted) and returns nil. Only one Run may run at a
// time.
func (q *Queue) Run(ctx context.Context) error {
	q.mu.Lock()
	if q.running {
		q.mu.Unlock()
		return errors.New("local queue: already running")
	}
	q.running = true
	base := q.baseURL
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.running = false
		q.mu.Unlock()
	}()
	if base == "" {
		q.log.Warn("local queue: running without a base URL; deliveries will fail until SetBaseURL", "queue", q.cfg.QueueName)
	}

	// Deliveries outlive ctx by up to ShutdownTimeout.
	dctx, cancelDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliveries()
	var wg sync.WaitGroup
	flushCtx, stopFlusher := context.WithCancel(context.WithoutCancel(ctx))
	flusherDone := make(chan struct{})
	go func() { q.flusher(flushCtx); close(flusherDone) }()
	sem := make(chan struct{}, q.cfg.Concurrency)
	// Deliveries run on a pool of at most Concurrency workers, started as
	// needed and kept until Run returns: a delivery runs the handler
	// (in-process, the whole step) on a goroutine whose stack has already
	// grown, rather than growing a fresh one's every time.
	work := make(chan *record)
	workers := 0
	worker := func(r *record) {
		for {
			q.deliver(dctx, ctx, r)
			<-sem
			var ok bool
			if r, ok = <-work; !ok {
				return
			}
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		r := q.next(ctx, timer)
		if r == nil {
			break
		}
		if workers == q.cfg.Concurrency {
			work <- r // a worker released its slot for it and is coming
			continue
		}
		select {
		case work <- r: // an idle worker took it
		default:
			workers++
			wg.Go(func() { worker(r) })
		}
	}
	close(work)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace := time.NewTimer(q.cfg.ShutdownTimeout)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		q.log.Warn("local queue: shutdown timeout; cancelling deliveries in flight", "queue", q.cfg.QueueName)
		cancelDeliveries()
		<-done
	}
	stopFlusher()
	<-flusherDone
	q.flushDone()
	return nil
}

// next takes the earliest due task off the heap and counts it in flight,
// sleeping until one is due or Enqueue adds one. It returns nil once ctx is
// cancelled.
func (q *Queue) next(ctx context.Context, timer *time.Timer) *record {
	for {
		wait := time.Duration(-1)
		q.mu.Lock()
		if len(q.tasks) > 0 {
			if wait = time.Until(q.tasks[0].ETA); wait <= 0 {
				r := q.tasks.pop()
				q.inflight++
				q.flying[r.Name] = r
				q.mu.Unlock()
				return r
			}
		}
		q.mu.Unlock()
		var fire <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-q.wake:
		case <-fire:
		}
		timer.Stop()
	}
}
