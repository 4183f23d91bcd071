package discord_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// The three schedule alerts reach the stand-in (which enforces Discord's
// limits) as their own messages in their own colour, pinging no one.
func TestScheduleAlerts(t *testing.T) {
	e := newEnv(t, []string{"extract", "load"}, nil)
	ctx := context.Background()
	fire := time.Date(2026, 3, 5, 5, 0, 0, 0, time.UTC)
	missed := pipeline.Event{Kind: pipeline.EventStartMissed, Run: pipeline.Run{Pipeline: "daily", Date: "2026-03-05"},
		Schedule: &pipeline.ScheduleAlert{Pipeline: "daily", Date: "2026-03-05", TimeZone: "Europe/Paris", Expected: fire, Late: 31 * time.Minute,
			Causes: []string{"the Cloud Scheduler job is paused or was deleted"}, Check: "pipeline doctor"}}
	follow := pipeline.Event{Kind: pipeline.EventStartedLate, Run: e.run,
		Schedule: &pipeline.ScheduleAlert{Pipeline: "daily", Date: "2026-03-05", TimeZone: "Europe/Paris", Expected: fire, Late: 42 * time.Minute}}
	late := pipeline.Event{Kind: pipeline.EventRunLate, Run: e.run,
		Schedule: &pipeline.ScheduleAlert{Pipeline: "daily", Date: "2026-03-05", TimeZone: "Europe/Paris", Expected: fire.Add(90 * time.Minute),
			Late: 15 * time.Minute, Step: "load", StepStatus: pipeline.StepRunning, StepSince: 52 * time.Minute}}
	for _, ev := range []pipeline.Event{missed, follow, late} {
		if err := e.n.Notify(ctx, ev); err != nil {
			t.Fatalf("Notify %s: %v", ev.Kind, err)
		}
	}
	posts := e.srv.Posts()
	if len(posts) != 3 {
		t.Fatalf("%d posts; want 3", len(posts))
	}
	want := []struct {
		color int
		title string
		has   []string
	}{
		{discord.ColorOrange, "daily · 2026-03-05 did not start", []string{"2026-03-05 06:00 Europe/Paris", "31 min", "paused or was deleted", "`pipeline doctor`"}},
		{discord.ColorBlue, "daily · 2026-03-05 started 42 min late", []string{"06:00 Europe/Paris", "`daily@2026-03-05`"}},
		{discord.ColorOrange, "daily · 2026-03-05 is late", []string{"07:30 Europe/Paris", "`load` — running for 52 min", "15 min late"}},
	}
	for i, p := range posts {
		m := p.Message
		if m.Content != "" || len(m.Embeds) != 1 {
			t.Fatalf("post %d: %+v", i, m)
		}
		em := m.Embeds[0]
		text := em.Title + "\n" + em.Description
		for _, f := range em.Fields {
			text += "\n" + f.Name + ": " + f.Value
		}
		if em.Color != want[i].color || !strings.Contains(em.Title, want[i].title) {
			t.Errorf("post %d: colour %x title %q; want %x %q", i, em.Color, em.Title, want[i].color, want[i].title)
		}
		for _, s := range want[i].has {
			if !strings.Contains(text, s) {
				t.Errorf("post %d does not say %q:\n%s", i, s, text)
			}
		}
		if m.AllowedMentions == nil || len(m.AllowedMentions.Parse) != 0 {
			t.Errorf("post %d may ping: %+v", i, m.AllowedMentions)
		}
	}
	e.noViolations()
}

// Oversized content (a long step name, many causes) is cut to Discord's
// limits, which the stand-in checks.
func TestScheduleAlertFitsLimits(t *testing.T) {
	e := newEnv(t, []string{"extract"}, nil)
	long := strings.Repeat("x", 3000)
	ev := pipeline.Event{Kind: pipeline.EventRunLate, Run: e.run,
		Schedule: &pipeline.ScheduleAlert{Pipeline: strings.Repeat("p", 300), Date: "2026-03-05", TimeZone: "Nowhere/Bad", Expected: time.Now(),
			Late: time.Hour, Step: long, StepStatus: pipeline.StepRetrying, StepSince: time.Hour, Causes: []string{long, long}}}
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	ev.Kind = pipeline.EventStartMissed
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Posts()); n != 2 {
		t.Fatalf("%d posts; want 2", n)
	}
	e.noViolations()
}

// A stand-in that is down fails the alert (so the orchestrator keeps it
// owed), and posts nothing.
func TestScheduleAlertFailsWhileDiscordIsDown(t *testing.T) {
	e := newEnv(t, []string{"extract"}, func(c *discord.Config) { c.MaxRetries = 1; c.FinalBudget = time.Second })
	e.srv.Down(503)
	ev := pipeline.Event{Kind: pipeline.EventStartMissed, Run: pipeline.Run{Pipeline: "daily", Date: "2026-03-05"},
		Schedule: &pipeline.ScheduleAlert{Pipeline: "daily", Date: "2026-03-05", TimeZone: "UTC", Expected: time.Now(), Late: time.Hour}}
	if err := e.n.Notify(context.Background(), ev); err == nil {
		t.Fatal("Notify succeeded while Discord is down")
	}
	if n := len(e.srv.Posts()); n != 0 {
		t.Errorf("%d posts while down", n)
	}
}

// The completion of a run that finished after its deadline says how late.
func TestCompletionSaysHowLate(t *testing.T) {
	e := newEnv(t, []string{"extract"}, nil)
	e.work(e.n)
	r := e.ledgerRun()
	r.Steps = nil
	deadline := time.Now().UTC().Add(-42 * time.Minute).Truncate(time.Second)
	r.Notes = map[string]string{pipeline.NoteDeadline: deadline.Format(time.RFC3339)}
	if _, err := e.l.UpdateRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	ev := e.finish(pipeline.RunSucceeded, "")
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	posts := e.srv.Posts()
	done := posts[len(posts)-1].Message.Embeds[0]
	if !strings.Contains(done.Description, "Finished 42 min after its deadline") {
		t.Errorf("completion says %q; want how late it finished", done.Description)
	}
	e.noViolations()
}

type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, pipeline.Task) error { return nil }

// End to end: the sweeper's missed-start alert and its follow-up reach the
// stand-in once each across duplicate ticks, a restarted orchestrator and a
// failed post that is sent again after the claim's grace.
func TestSweeperAlertsThroughDiscord(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 6, 5, 31, 0, 0, time.UTC) // 06:31 in Paris
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }
	// The notifier shares the orchestrator's clock: its outage pacing (one
	// call per run or alert per OutageInterval) follows the fake time.
	e := newEnv(t, []string{"extract"}, func(c *discord.Config) { c.Now = clock })
	ctx := context.Background()
	reg := steps.NewRegistry()
	reg.Register("go", func(map[string]any) (steps.Step, error) { return steps.StepFunc(nil), nil })
	defs, err := pipeline.Parse("p.yaml", []byte("name: daily\ntime_zone: Europe/Paris\nschedule: \"0 6 * * *\"\nsteps:\n  - {name: extract, kind: go}\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	newOrch := func() *pipeline.Orchestrator {
		o, err := pipeline.New(pipeline.Config{Catalog: pipeline.NewCatalog(defs...), Ledger: e.l, Queue: nopQueue{}, Notifier: e.n,
			Now: clock, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := newOrch()
	tick := func() {
		t.Helper()
		if _, err := o.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.srv.Down(503)
	tick() // the post fails: the alert stays owed
	e.srv.Up()
	tick() // within the grace: not sent again yet
	if n := len(e.srv.Posts()); n != 0 {
		t.Fatalf("%d posts while the first sender's claim stands", n)
	}
	set(now.Add(3 * time.Minute))
	tick()
	o = newOrch() // a restart
	tick()
	tick()
	posts := e.srv.Posts()
	if len(posts) != 1 || !strings.Contains(posts[0].Message.Embeds[0].Title, "daily · 2026-03-06 did not start") {
		t.Fatalf("posts after the missed start: %+v", posts)
	}
	set(time.Date(2026, 3, 6, 5, 42, 0, 0, time.UTC))
	if _, err := o.Start(ctx, pipeline.StartRequest{Pipeline: "daily", Date: "2026-03-06", Trigger: "cli"}); err != nil {
		t.Fatal(err)
	}
	tick()
	tick()
	posts = e.srv.Posts()
	var follow []string
	for _, p := range posts {
		for _, em := range p.Message.Embeds {
			if strings.Contains(em.Title, "started") {
				follow = append(follow, em.Title)
			}
		}
	}
	if len(follow) != 1 || !strings.Contains(follow[0], "started 42 min late") {
		t.Errorf("follow-ups: %q; want one saying started 42 min late", follow)
	}
	e.noViolations()
}
