package discord_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// endedRun creates a run that has ended with its notification owed and
// returns its final event.
func (e *env) endedRun(key string) pipeline.Event {
	e.t.Helper()
	now := time.Now().UTC()
	r := pipeline.Run{
		ID: pipeline.RunID("daily", key), Pipeline: "daily", Key: key, Date: key, Status: pipeline.RunSucceeded,
		Trigger: "scheduler", CreatedAt: now, UpdatedAt: now, FinishedAt: now, Notify: pipeline.NotifyPending,
	}
	stored, _, err := e.l.CreateRun(context.Background(), r, []pipeline.StepRun{{RunID: r.ID, Step: "a", Status: pipeline.StepSucceeded, Generation: 1, MaxAttempts: 1}})
	if err != nil {
		e.t.Fatal(err)
	}
	return pipeline.Event{Kind: pipeline.EventRunSucceeded, Run: stored}
}

// Under an outage, callers that keep re-sending the final notifications of
// ten runs (every 5 s, for two minutes: handlers' duplicates and the
// sweeper together) reach Discord at most once per run per 30 s, after the
// one request that found Discord down; after recovery each run's final
// message is posted exactly once.
func TestOutageIsPacedPerRunAndDeliveredOnceAfter(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 5, 6, 0, 0, 0, time.UTC)}
	const maxRetries = 3
	e := newEnv(t, []string{"a"}, func(c *discord.Config) { c.Now, c.MaxRetries = clk.Now, maxRetries })
	var events []pipeline.Event
	for i := range 10 {
		events = append(events, e.endedRun(fmt.Sprintf("2026-02-%02d", i+1)))
	}
	e.srv.Down(http.StatusServiceUnavailable)
	const window, every, step = 120, 30, 5 // seconds
	for range window / step {
		for _, ev := range events {
			if err := e.n.Notify(context.Background(), ev); err == nil {
				t.Fatalf("final notification of %s reported sent during an outage", ev.Run.ID)
			}
		}
		clk.advance(step * time.Second)
	}
	calls := e.srv.Requests()
	// The first request that found Discord down makes its retries; then one
	// call per run per 30 s.
	if limit := (1 + maxRetries) + len(events)*window/every; calls > limit {
		t.Fatalf("%d calls to Discord in %d s of outage for %d runs, want at most %d", calls, window, len(events), limit)
	}
	if calls < len(events) {
		t.Fatalf("%d calls: every run should have tried once", calls)
	}
	if len(e.srv.Posts()) != 0 {
		t.Fatal("posted during the outage")
	}

	e.srv.Up()
	clk.advance(every * time.Second)
	for range 2 { // re-sent, maybe twice
		for _, ev := range events {
			if err := e.n.Notify(context.Background(), ev); err != nil {
				t.Fatalf("final notification of %s after recovery: %v", ev.Run.ID, err)
			}
		}
	}
	// One live message and one completion message per run.
	if got := len(e.srv.Posts()); got != 2*len(events) {
		t.Fatalf("%d posts after recovery, want %d (live + final, once per run)", got, 2*len(events))
	}
	e.noViolations()
}

// A 503 with Retry-After holds every request until then: the notification
// stays owed (no retry inside its budget) and goes once the time has passed.
func TestRetryAfterOn503IsHonoured(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 5, 6, 0, 0, 0, time.UTC)}
	// The final budget (2 s) is shorter than Retry-After: Notify gives up
	// at once rather than wait.
	e := newEnv(t, []string{"a"}, func(c *discord.Config) { c.Now, c.FinalBudget = clk.Now, 2*time.Second })
	ev := e.endedRun("2026-02-01")
	e.srv.Unavailable(1, 20)
	if err := e.n.Notify(context.Background(), ev); err == nil {
		t.Fatal("sent despite Retry-After 20 s")
	}
	if n := e.srv.Requests(); n != 1 {
		t.Fatalf("%d requests before Retry-After passed, want 1", n)
	}
	clk.advance(10 * time.Second)
	if err := e.n.Notify(context.Background(), ev); err == nil || e.srv.Requests() != 1 {
		t.Fatalf("a request went %d s before Retry-After ended (err %v)", 10, err)
	}
	clk.advance(11 * time.Second)
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
	if got := len(e.srv.Posts()); got != 2 {
		t.Fatalf("%d posts, want the live and the final message", got)
	}
}

// A 429 during an outage is an answer: Discord is up again, and the run's
// next call waits for the Retry-After only, not for the outage's 30 s
// interval. Before, the 429 left the outage on and cost the run another 30 s.
func TestRateLimitAnswerEndsTheOutage(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 5, 6, 0, 0, 0, time.UTC)}
	e := newEnv(t, []string{"a"}, func(c *discord.Config) { c.Now, c.MaxRetries = clk.Now, 1 })
	ev := e.endedRun("2026-02-01")
	e.srv.Down(http.StatusServiceUnavailable)
	if err := e.n.Notify(context.Background(), ev); err == nil {
		t.Fatal("sent during an outage")
	}
	clk.advance(30 * time.Second) // the run's next call is due
	e.srv.Up()
	e.srv.RateLimit(1, 1)
	if err := e.n.Notify(context.Background(), ev); err == nil {
		t.Fatal("sent although Discord answered 429")
	}
	clk.advance(2 * time.Second) // past Retry-After, far short of 30 s
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("2 s after a 429 whose Retry-After was 1 s: %v", err)
	}
	if got := len(e.srv.Posts()); got != 2 {
		t.Fatalf("%d posts, want the live and the final message", got)
	}
	e.noViolations()
}
