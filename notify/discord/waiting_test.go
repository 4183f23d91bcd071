package discord_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
)

// The live message shows a waiting (asynchronous) step with its icon and
// the word waiting, since when (Discord renders the time waited live), the
// check it is on, the link to the remote work and a check's error; then
// its success, through the Discord stand-in.
func TestLiveMessageShowsAWaitingStep(t *testing.T) {
	e := newEnv(t, []string{"extract", "export"}, nil)
	e.work(e.n)
	e.started()
	e.step("extract", pipeline.EventStepStarted, start)
	e.step("extract", pipeline.EventStepSucceeded, succeed)
	e.step("export", pipeline.EventStepStarted, start)
	var since time.Time
	e.step("export", pipeline.EventStepWaiting, func(s *pipeline.StepRun) {
		since = s.StartedAt
		s.Status, s.WaitingSince, s.Check = pipeline.StepWaiting, s.StartedAt, 1
		s.NextCheckAt, s.Link = s.StartedAt.Add(10*time.Minute), "https://exports.example/exports/7"
	})
	e.liveShows(fmt.Sprintf("⏳ `export` — waiting · since <t:%d:R> · attempt 1/3 · check 1 · [remote work](https://exports.example/exports/7)", since.Unix()))
	e.step("export", pipeline.EventStepWaiting, func(s *pipeline.StepRun) {
		s.Check, s.Error = 3, "check failed: 503 from the exports API"
	})
	e.liveShows("check 3 · [remote work](https://exports.example/exports/7)\n  ↳ `check failed: 503 from the exports API`")
	e.step("export", pipeline.EventStepSucceeded, func(s *pipeline.StepRun) {
		s.Status, s.Error, s.FinishedAt = pipeline.StepSucceeded, "", s.StartedAt.Add(3*time.Hour)
	})
	e.liveShows("✅ `export` — succeeded · 3h")
	e.noViolations()
}

// A waiting step's line keeps the link safe in Markdown (no way out of the
// link's parentheses) and shows the time waited in a terminal preview.
func TestWaitingStepLine(t *testing.T) {
	since := time.Now().Add(-2 * time.Hour)
	s := pipeline.StepRun{Step: "export", Status: pipeline.StepWaiting, Attempts: 1, MaxAttempts: 2, Check: 4,
		WaitingSince: since, Link: "https://jobs.example/a)b [x](y)"}
	line := discord.StepLine(s)
	if !strings.HasPrefix(line, "⏳ `export` — waiting · since ") || !strings.Contains(line, "[remote work](https://jobs.example/a%29b%20%5Bx%5D%28y%29)") {
		t.Fatalf("line = %q", line)
	}
	s.Link = "not a url at all"
	if line := discord.StepLine(s); strings.Contains(line, "remote work") {
		t.Fatalf("a link that is not an http(s) URL is shown: %q", line)
	}
	preview := discord.Preview(discord.Render(pipeline.Run{Pipeline: "p", Date: "2026-03-05", Status: pipeline.RunRunning, Steps: []pipeline.StepRun{s}}, ""))
	if !strings.Contains(preview, "waiting · since "+since.UTC().Format("15:04:05Z")) {
		t.Fatalf("preview:\n%s", preview)
	}
}
