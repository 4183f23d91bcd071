package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

const scheduledYAML = `
name: daily
time_zone: Europe/Paris
schedule: "0 6 * * *"
deadline: "07:30"
start_within: 20m
steps:
  - {name: a, kind: noop}
`

// pause and unpause on the local store: recorded with who and why, shown by
// schedules --state, refused with a clear message for an unknown pipeline.
func TestPauseCommands(t *testing.T) {
	e := newOpsEnv(t, scheduledYAML)
	out := e.ok("pause", "daily", "--reason", "warehouse migration")
	if !strings.Contains(out, "daily is paused (by cli:") || !strings.Contains(out, "warehouse migration") || !strings.Contains(out, "pipeline unpause daily") {
		t.Fatalf("pause printed:\n%s", out)
	}
	out = e.ok("schedules", "--state")
	if !strings.Contains(out, "PAUSED by cli:") || !strings.Contains(out, "07:30") || !strings.Contains(out, "CET") && !strings.Contains(out, "CEST") {
		t.Fatalf("schedules --state:\n%s", out)
	}
	var st struct {
		Schedules []pipeline.ScheduleInfo `json:"schedules"`
	}
	if err := json.Unmarshal([]byte(e.ok("schedules", "--state", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Schedules) != 1 || !st.Schedules[0].Pause.Paused || st.Schedules[0].Pause.Reason != "warehouse migration" || st.Schedules[0].Next.IsZero() {
		t.Fatalf("schedules --state --json = %+v", st.Schedules)
	}
	out = e.ok("unpause", "daily")
	if !strings.Contains(out, "daily runs on its schedule (resumed by cli:") {
		t.Fatalf("unpause printed:\n%s", out)
	}
	_, _, err := e.run("pause", "nope")
	wantExit(t, err, 1, `pipeline "nope"`, "loaded: [daily]")
	// The deploy script's TSV is unchanged.
	if out := e.ok("schedules"); out != "daily\t0 6 * * *\tEurope/Paris\t45s\n" {
		t.Errorf("schedules TSV = %q", out)
	}
}

// pause --url goes through the service's operator route; the service records
// its caller.
func TestPauseThroughTheService(t *testing.T) {
	e := newOpsEnv(t, scheduledYAML)
	cfg := &Config{File: []string{e.file}, Backend: "local", Data: e.data, Auth: "off", LogLevel: "error", LeaseGrace: 30 * time.Second}
	a, err := buildApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	ln, err := a.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.serve(ctx, ln, nil) }()
	defer func() { stop(); <-done }()
	url := []string{"--url", a.baseURL, "--id-token", "unused-with-auth-off"}
	out, _, err := runArgs(t, append([]string{"pause", "daily", "--reason", "holiday"}, url...)...)
	if err != nil || !strings.Contains(out, "daily is paused") || !strings.Contains(out, "holiday") {
		t.Fatalf("pause --url: %v\n%s", err, out)
	}
	st, err := a.orch.PauseState(context.Background(), "daily")
	if err != nil || !st.Paused || st.Reason != "holiday" {
		t.Fatalf("ledger after pause --url: %+v %v", st, err)
	}
	out, _, err = runArgs(t, append([]string{"schedules", "--state"}, url...)...)
	if err != nil || !strings.Contains(out, "PAUSED by") {
		t.Fatalf("schedules --state --url: %v\n%s", err, out)
	}
	if _, _, err := runArgs(t, append([]string{"unpause", "daily"}, url...)...); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.orch.PauseState(context.Background(), "daily"); st.Paused {
		t.Fatal("still paused after unpause --url")
	}
}
