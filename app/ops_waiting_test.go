package app

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// `pipeline runs` marks an unfinished run with the steps it has waiting on
// remote work (asynchronous steps), beside its schedule marks; a finished
// run and a running run with nothing waiting are shown as before.
func TestRunsListShowsWaitingSteps(t *testing.T) {
	e := newOpsEnv(t, chainYAML("http://127.0.0.1:9"))
	cfg := &Config{File: []string{e.file}, Backend: "local", Data: e.data, Auth: "on", LogLevel: "info", LeaseGrace: durationOf(30 * time.Second)}
	ctx := context.Background()
	a, err := buildApp(ctx, cfg, newLogger(cfg, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second) // within the list's default --since
	record := func(date string, status pipeline.RunStatus, notes map[string]string, steps ...pipeline.StepStatus) {
		t.Helper()
		r := pipeline.Run{ID: pipeline.RunID("chain", date), Pipeline: "chain", Key: date, Date: date, Status: status,
			Trigger: "cli", CreatedAt: at, UpdatedAt: at, Notes: notes}
		if status.Terminal() {
			r.FinishedAt = at.Add(time.Minute)
		}
		var srs []pipeline.StepRun
		for i, st := range steps {
			srs = append(srs, pipeline.StepRun{RunID: r.ID, Step: []string{"fetch", "load"}[i], Status: st, Generation: 1, Attempts: 1, MaxAttempts: 1})
		}
		if _, _, err := a.orch.Ledger().CreateRun(ctx, r, srs); err != nil {
			t.Fatal(err)
		}
	}
	record("2026-11-20", pipeline.RunSucceeded, nil, pipeline.StepSucceeded, pipeline.StepSucceeded)
	record("2026-11-21", pipeline.RunRunning, nil, pipeline.StepSucceeded, pipeline.StepRunning)
	record("2026-11-22", pipeline.RunRunning, nil, pipeline.StepSucceeded, pipeline.StepWaiting)
	record("2026-11-23", pipeline.RunRunning, map[string]string{pipeline.NoteLate: "1"}, pipeline.StepWaiting, pipeline.StepWaiting)
	a.close()

	out := e.ok("runs")
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(l, " "); ok {
			lines[id] = l
		}
	}
	for id, want := range map[string]string{
		"chain@2026-11-20": "succeeded  ",
		"chain@2026-11-21": "running  ",
		"chain@2026-11-22": "running (1 waiting)",
		"chain@2026-11-23": "running (2 waiting, late)",
	} {
		if !strings.Contains(lines[id], want) || strings.Contains(want, "  ") && strings.Contains(lines[id], "waiting") {
			t.Errorf("run %s: line %q, want %q in it\n%s", id, lines[id], want, out)
		}
	}
}
