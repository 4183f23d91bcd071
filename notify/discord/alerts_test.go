package discord_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
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
