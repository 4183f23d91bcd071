package app

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// status shows a waiting step as waiting, with the time waited, its next
// check and the link to the remote work.
func TestStatusShowsAWaitingStep(t *testing.T) {
	since := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	s := pipeline.StepRun{Step: "export", Status: pipeline.StepWaiting, Generation: 1, Attempts: 1, MaxAttempts: 3,
		WaitingSince: since, NextCheckAt: since.Add(3*time.Hour + 30*time.Minute), Check: 7, Link: "https://jobs.example/exports/1"}
	got := waitDetail(s, since.Add(3*time.Hour+5*time.Minute))
	for _, want := range []string{"waited 3h5m0s", "check 7 at ", "https://jobs.example/exports/1"} {
		if !strings.Contains(got, want) {
			t.Fatalf("waitDetail = %q, want %q in it", got, want)
		}
	}
	var b bytes.Buffer
	printRun(&b, pipeline.Run{ID: "w@2026-11-23", Status: pipeline.RunRunning, Steps: []pipeline.StepRun{s}})
	if out := b.String(); !strings.Contains(out, "… export") || !strings.Contains(out, "waiting") || !strings.Contains(out, "waited ") {
		t.Fatalf("status output:\n%s", out)
	}
}
