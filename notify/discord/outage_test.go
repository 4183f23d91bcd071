package discord_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
)

// An outage during the run: step events return at once, the final event is
// reported owed (a crash between commit and post looks the same to the
// orchestrator), and when Discord is back the live message catches up and the
// re-sent final event posts exactly once.
func TestOutageThenRecovery(t *testing.T) {
	// Calls per run are paced during the outage (OutageInterval): short
	// here, so that the catch-up after it is quick.
	e := newEnv(t, []string{"a", "b"}, func(c *discord.Config) {
		c.FinalBudget, c.OutageInterval = 300*time.Millisecond, 100*time.Millisecond
	})
	e.work(e.n)
	e.srv.Down(http.StatusServiceUnavailable)
	e.started()
	e.step("a", pipeline.EventStepStarted, start)
	e.step("a", pipeline.EventStepSucceeded, succeed)
	e.step("b", pipeline.EventStepStarted, start)
	e.step("b", pipeline.EventStepSucceeded, succeed)
	eventually(t, "the worker tries during the outage", func() error {
		if n := len(e.srv.Hits()); n < 3 {
			return fmt.Errorf("%d requests", n)
		}
		return nil
	})
	ev := e.finish(pipeline.RunSucceeded, "")
	if err := e.n.Notify(context.Background(), ev); err == nil {
		t.Fatal("final Notify during an outage returned nil: the notification would be lost")
	}
	if len(e.srv.Posts()) != 0 {
		t.Fatal("posted during an outage")
	}
	e.srv.Up()
	e.liveShows("`b` — succeeded")
	// The orchestrator (or the sweeper) re-sends the owed final event until it
	// is accepted, maybe twice more after that. Each call has the short budget
	// set above (to keep the outage short), which a loaded machine may exceed
	// on a healthy Discord too: re-send as the sweeper would, never assume the
	// first re-send fits in it.
	for i := range 2 {
		eventually(t, fmt.Sprintf("re-sent final event %d accepted", i+1), func() error {
			return e.n.Notify(context.Background(), ev)
		})
	}
	posts := e.srv.Posts()
	if len(posts) != 2 || !strings.Contains(posts[1].Message.Embeds[0].Title, "succeeded") {
		t.Fatalf("posts after recovery: %+v", posts)
	}
	if m := e.srv.Message(posts[0].MessageID); m.Embeds[0].Color != discord.ColorGreen {
		t.Errorf("live message not at its final state: %+v", m.Embeds[0])
	}
	e.noViolations()
}

// A few 5xx within the retry bound are invisible: one Notify succeeds.
func TestTransientErrorsAreRetried(t *testing.T) {
	e := newEnv(t, []string{"a"}, nil)
	e.srv.Fail(2, http.StatusBadGateway)
	ev := e.finish(pipeline.RunCancelled, "cancelled by an operator")
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if posts := e.srv.Posts(); len(posts) != 2 || !strings.Contains(posts[1].Message.Embeds[0].Description, "cancelled by an operator") {
		t.Fatalf("posts %+v", posts)
	}
	if got := e.srv.Message(e.liveID()).Embeds[0].Color; got != discord.ColorGrey {
		t.Errorf("cancelled colour %x", got)
	}
	e.noViolations()
}

// A 429 storm: step events still return at once, every retry waits the
// retry_after Discord asked for, a final Notify gives up within its budget
// (and is re-sent), and everything lands once the storm passes. One caller
// at a time, so that request order shows the waits.
func TestRateLimitStorm(t *testing.T) {
	const retryAfter = 0.03
	e := newEnv(t, []string{"a", "b", "c"}, func(c *discord.Config) { c.MaxRetries = 2; c.FinalBudget = time.Second })
	e.srv.RateLimit(25, retryAfter)
	e.started()
	for _, s := range []string{"a", "b", "c"} {
		e.step(s, pipeline.EventStepStarted, start)
		e.step(s, pipeline.EventStepSucceeded, succeed)
	}
	ev := e.finish(pipeline.RunSucceeded, "")
	eventually(t, "final notification accepted after the storm", func() error {
		return e.n.Notify(context.Background(), ev)
	})
	e.liveShows("`c` — succeeded")
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	hits := e.srv.Hits()
	var limited int
	for i, h := range hits {
		if h.Status != http.StatusTooManyRequests {
			continue
		}
		limited++
		for _, next := range hits[i+1:] {
			if gap := next.At.Sub(h.At); gap < h.RetryAfter {
				t.Errorf("request %v after a 429 asking for %v", gap, h.RetryAfter)
			}
		}
	}
	if limited != 25 {
		t.Errorf("%d rate-limited answers, want 25", limited)
	}
	if posts := e.srv.Posts(); len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	e.noViolations()
}

// Step events return before Discord has even answered: the stand-in holds
// every request until released. A final event gives up after its budget.
func TestNotifyNeverBlocksOnDiscord(t *testing.T) {
	e := newEnv(t, []string{"a"}, func(c *discord.Config) {
		c.FinalBudget = 200 * time.Millisecond
		c.AttemptTimeout = 100 * time.Millisecond
		// One attempt per call and no worker retry within the test: held
		// requests the client gave up on then drain before the release.
		c.MinBackoff, c.MaxBackoff = time.Hour, time.Hour
	})
	e.srv.Hold()
	e.work(e.n)
	e.started()
	<-e.srv.Arrived() // the worker's post is stuck in Discord
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			s := pipeline.StepRun{RunID: e.run.ID, Step: "a", Status: pipeline.StepRunning, Attempts: 1 + i%3, MaxAttempts: 3}
			if err := e.n.Notify(context.Background(), pipeline.Event{Kind: pipeline.EventStepStarted, Run: e.run, Step: &s}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(e.srv.Posts()); n != 0 {
		t.Fatalf("stand-in answered %d posts while held", n)
	}
	ev := e.finish(pipeline.RunSucceeded, "")
	if err := e.n.Notify(context.Background(), ev); err == nil {
		t.Fatal("final Notify succeeded while Discord hangs")
	}
	eventually(t, "abandoned requests drain", func() error {
		if n := e.srv.Waiting(); n != 0 {
			return fmt.Errorf("%d held", n)
		}
		return nil
	})
	e.srv.Release()
	// Re-sent until the worker's abandoned claim is released.
	eventually(t, "final notification after the hang", func() error { return e.n.Notify(context.Background(), ev) })
	if posts := e.srv.Posts(); len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	e.noViolations()
}

// An instance crashed after claiming the final post: a fresh claim is
// respected (the notification stays owed); a stale one is taken over and the
// post is made once.
func TestCrashedClaimIsTakenOver(t *testing.T) {
	// The claim's age is set by the timestamp written into it, not by sleeping:
	// a claim made now is fresh for a minute however slow the machine is, and
	// one stamped two minutes ago is stale.
	e := newEnv(t, []string{"a"}, func(c *discord.Config) { c.ClaimTimeout = time.Minute })
	ev := e.finish(pipeline.RunFailed, "boom")
	claim := func(at time.Time, notes map[string]string) {
		t.Helper()
		r := e.ledgerRun()
		r.Steps = nil
		if notes != nil {
			r.Notes = notes
		}
		r.Notes[discord.NoteFinal] = fmt.Sprintf("posting:%d|x", at.UnixNano())
		if _, err := e.l.UpdateRun(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	claim(time.Now(), map[string]string{"other.notifier": "keep me"})
	if err := e.n.Notify(context.Background(), ev); err == nil {
		t.Fatal("a fresh claim of another instance was ignored")
	}
	claim(time.Now().Add(-2*time.Minute), nil) // the other instance crashed long ago
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if posts := e.srv.Posts(); len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	if got := e.ledgerRun().Notes["other.notifier"]; got != "keep me" {
		t.Errorf("another notifier's note was dropped: %q", got)
	}
	e.noViolations()
}

// A live message deleted in the channel is posted again.
func TestDeletedLiveMessageIsReposted(t *testing.T) {
	e := newEnv(t, []string{"a"}, nil)
	e.work(e.n)
	e.started()
	e.liveShows("`a` — pending")
	e.srv.Delete(e.liveID())
	e.step("a", pipeline.EventStepStarted, start)
	e.liveShows("`a` — running")
	if posts := e.srv.Posts(); len(posts) != 2 {
		t.Fatalf("%d posts, want the original and the replacement", len(posts))
	}
}
