package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Limits of the background sender. A backlog beyond senderBacklog is not
// queued: a step event is dropped (logged) and a final notification stays
// owed in the ledger, where the sweeper finds it after owedGrace.
const (
	senderBacklog = 1024
	senderWorkers = 16
)

// sendJob is one event for the notifier and what to do with the outcome
// (record a final notification as sent); after may be nil.
type sendJob struct {
	ctx   context.Context // the caller's, detached: values (trace, logger) only
	e     Event
	after func(ctx context.Context, err error)
	// once, when set, makes a job with the same key queued or being sent
	// take this one's place (duplicate deliveries of an owed final).
	once string
}

// sender hands committed events to the notifier in the background, so that
// no step waits on a notifier (invariant 6). Events of one run are sent in
// the order they were handed over (a run's live message follows its steps);
// runs are sent concurrently, at most senderWorkers at a time. close stops
// it: what is still queued when its grace ends is given up (a final
// notification stays owed in the ledger).
type sender struct {
	notify func(ctx context.Context, e Event) error
	log    *slog.Logger
	// base is cancelled when close gives up: it ends the notifier calls in
	// flight and the jobs still queued.
	base   context.Context
	cancel context.CancelFunc
	slots  chan struct{}

	mu      sync.Mutex
	queues  map[string][]sendJob // by run ID ("" for events without a run)
	onces   map[string]bool      // once keys queued or being sent
	pending int                  // queued or being sent
	idle    chan struct{}        // closed when pending drops to 0
	closed  bool
	wg      sync.WaitGroup
}

func newSender(notify func(context.Context, Event) error, log *slog.Logger) *sender {
	base, cancel := context.WithCancel(context.Background())
	idle := make(chan struct{})
	close(idle)
	return &sender{notify: notify, log: log, base: base, cancel: cancel,
		slots: make(chan struct{}, senderWorkers), queues: map[string][]sendJob{}, onces: map[string]bool{}, idle: idle}
}

// send queues j without blocking; it reports false when j was not queued
// (the sender is closed or its backlog full). A job whose once key is
// queued or being sent is taken as queued.
func (s *sender) send(j sendJob) bool {
	key := j.e.Run.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.once != "" && s.onces[j.once] {
		return true
	}
	if s.closed || s.pending >= senderBacklog {
		return false
	}
	if j.once != "" {
		s.onces[j.once] = true
	}
	if s.pending == 0 {
		s.idle = make(chan struct{})
	}
	s.pending++
	q, running := s.queues[key]
	s.queues[key] = append(q, j)
	if !running {
		s.wg.Add(1)
		go s.work(key)
	}
	return true
}

// work sends the jobs of one run in order until its queue is empty.
func (s *sender) work(key string) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		q := s.queues[key]
		if len(q) == 0 {
			delete(s.queues, key)
			s.mu.Unlock()
			return
		}
		j := q[0]
		s.queues[key] = q[1:]
		s.mu.Unlock()
		s.run(j)
		s.mu.Lock()
		delete(s.onces, j.once)
		s.pending--
		if s.pending == 0 {
			close(s.idle)
		}
		s.mu.Unlock()
	}
}

// run sends one job within a worker slot. A job whose sender was closed
// before its turn is given up, as is a call close ends.
func (s *sender) run(j sendJob) {
	var err error
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
		if err = s.base.Err(); err == nil {
			ctx, cancel := context.WithTimeout(j.ctx, notifyTimeout)
			stop := context.AfterFunc(s.base, cancel)
			err = s.notify(ctx, j.e)
			stop()
			cancel()
		}
	case <-s.base.Done():
		err = s.base.Err()
	}
	if err != nil {
		s.log.WarnContext(j.ctx, "notification not sent", "run", j.e.Run.ID, "event", string(j.e.Kind), "error", err.Error())
	}
	if j.after != nil {
		j.after(j.ctx, err)
	}
}

// flush waits until every event handed over so far has been sent (or given
// up), or ctx ends.
func (s *sender) flush(ctx context.Context) error {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notifications still being sent: %w", ctx.Err())
	}
}

// close stops taking events and waits, until ctx ends, for those queued;
// then it ends the calls in flight and gives up the rest. Closing again
// returns at once.
func (s *sender) close(ctx context.Context) error {
	if s.base.Err() != nil {
		return nil // closed before
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.flush(ctx)
	s.cancel()
	if err == nil {
		s.wg.Wait() // every worker is returning
	}
	return err
}
