package discord_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/notify/discord/discordtest"
	"github.com/pipelinehq/pipeline/pipeline"
)

// env is a stand-in Discord, a real bbolt ledger and a notifier on them.
type env struct {
	t   *testing.T
	srv *discordtest.Server
	l   *boltledger.Ledger
	n   *discord.Notifier
	run pipeline.Run
}

func newEnv(t *testing.T, steps []string, tweak func(*discord.Config)) *env {
	t.Helper()
	srv := discordtest.New()
	t.Cleanup(srv.Close)
	l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	e := &env{t: t, srv: srv, l: l}
	e.n = e.notifier(tweak)
	now := time.Now().UTC().Add(-time.Minute)
	r := pipeline.Run{
		ID: pipeline.RunID("daily", "2026-03-05"), Pipeline: "daily", Key: "2026-03-05", Date: "2026-03-05",
		Params: map[string]string{"region": "eu"}, Status: pipeline.RunRunning, Trigger: "scheduler",
		CreatedAt: now, UpdatedAt: now,
	}
	srs := make([]pipeline.StepRun, len(steps))
	for i, s := range steps {
		srs[i] = pipeline.StepRun{RunID: r.ID, Step: s, Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3, UpdatedAt: now}
	}
	stored, _, err := l.CreateRun(context.Background(), r, srs)
	if err != nil {
		t.Fatal(err)
	}
	e.run = stored
	return e
}

// notifier is another notifier on the same ledger and stand-in (another instance).
func (e *env) notifier(tweak func(*discord.Config)) *discord.Notifier {
	cfg := discord.Config{
		WebhookURL: e.srv.WebhookURL(), Store: e.l, Revision: "pipeline-00042-abc", Project: "acme-prod",
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, EditInterval: time.Millisecond,
		// Generous bounds: on a loaded machine a healthy stand-in may answer
		// slowly, and a synchronous final Notify must not give up on it. Tests
		// about giving up set their own, short ones.
		AttemptTimeout: 10 * time.Second, FinalBudget: 30 * time.Second, Logger: slog.New(slog.DiscardHandler),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := discord.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// work runs the notifier's worker until the test ends.
func (e *env) work(n *discord.Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
}

// step commits a change to a step, as the orchestrator does, and notifies.
func (e *env) step(name string, kind pipeline.EventKind, change func(*pipeline.StepRun)) {
	e.t.Helper()
	ctx := context.Background()
	got, err := e.l.GetSteps(ctx, e.run.ID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	s := got[0]
	change(&s)
	s.UpdatedAt = time.Now().UTC()
	stored, err := e.l.UpdateStep(ctx, s)
	if err != nil {
		e.t.Fatal(err)
	}
	stub := pipeline.Run{ID: e.run.ID, Pipeline: e.run.Pipeline, Key: e.run.Key, Date: e.run.Date, Params: e.run.Params, Status: pipeline.RunRunning}
	if err := e.n.Notify(ctx, pipeline.Event{Kind: kind, Run: stub, Step: &stored}); err != nil {
		e.t.Fatalf("step event %s: %v", kind, err)
	}
}

func start(s *pipeline.StepRun) {
	s.Status, s.Attempts, s.StartedAt, s.FinishedAt = pipeline.StepRunning, s.Attempts+1, time.Now().UTC(), time.Time{}
}

func succeed(s *pipeline.StepRun) {
	s.Status, s.Error, s.FinishedAt = pipeline.StepSucceeded, "", s.StartedAt.Add(1234*time.Millisecond)
}

func fail(status pipeline.StepStatus, msg string) func(*pipeline.StepRun) {
	return func(s *pipeline.StepRun) {
		s.Status, s.Error, s.FinishedAt = status, msg, s.StartedAt.Add(2*time.Second)
	}
}

// finish commits the run's end (as the orchestrator does) and returns the
// final event to send.
func (e *env) finish(status pipeline.RunStatus, msg string) pipeline.Event {
	e.t.Helper()
	ctx := context.Background()
	r, err := e.l.GetRun(ctx, e.run.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	steps := r.Steps
	r.Steps = nil
	r.Status, r.Error, r.FinishedAt, r.UpdatedAt, r.Notify = status, msg, time.Now().UTC(), time.Now().UTC(), pipeline.NotifyPending
	stored, err := e.l.UpdateRun(ctx, r)
	if err != nil {
		e.t.Fatal(err)
	}
	stored.Steps = steps
	kind := map[pipeline.RunStatus]pipeline.EventKind{
		pipeline.RunSucceeded: pipeline.EventRunSucceeded, pipeline.RunFailed: pipeline.EventRunFailed, pipeline.RunCancelled: pipeline.EventRunCancelled,
	}[status]
	return pipeline.Event{Kind: kind, Run: stored}
}

func (e *env) started() {
	e.t.Helper()
	if err := e.n.Notify(context.Background(), pipeline.Event{Kind: pipeline.EventRunStarted, Run: e.run}); err != nil {
		e.t.Fatal(err)
	}
}

// ledgerRun is the run as stored now.
func (e *env) ledgerRun() pipeline.Run {
	e.t.Helper()
	r, err := e.l.GetRun(context.Background(), e.run.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// liveID is the live message's ID from the ledger ("" if none).
func (e *env) liveID() string {
	id := e.ledgerRun().Notes[discord.NoteLive]
	if strings.HasPrefix(id, "posting:") {
		return ""
	}
	return id
}

// liveShows waits until the live message's description contains want.
func (e *env) liveShows(want string) {
	e.t.Helper()
	eventually(e.t, "live message shows "+want, func() error {
		id := e.liveID()
		if id == "" {
			return errors.New("no live message recorded")
		}
		m := e.srv.Message(id)
		if m == nil || len(m.Embeds) != 1 {
			return fmt.Errorf("message %s: %+v", id, m)
		}
		if !strings.Contains(m.Embeds[0].Description, want) {
			return fmt.Errorf("description is %q", m.Embeds[0].Description)
		}
		return nil
	})
}

// eventually polls cond: a liveness bound for background work, not a
// performance assertion (the bound is generous).
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *env) noViolations() {
	e.t.Helper()
	for _, v := range e.srv.Violations() {
		e.t.Errorf("stand-in saw: %s", v)
	}
}
