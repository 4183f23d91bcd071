package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// A paused pipeline: the scheduler's start (and its retry) answers 200
// skipped and creates no run, no missed-start alert fires (not even after
// unpausing, for a date whose fire time fell in the pause), an operator can
// still start a run by hand, and the pause is recorded with who and why.
func TestPausedPipelineSkipsScheduledStarts(t *testing.T) {
	a := newAPI(t) // chain: "0 6 * * *" Europe/Paris; the clock is 2026-11-23 10:00 UTC
	ctx := context.Background()
	a.set(time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)) // before the 06:00 Paris fire
	code, out := a.do("POST", "/pipeline/pipelines/chain/pause", a.token, []byte(`{"reason":"warehouse migration"}`), nil)
	if code != 200 || out["paused"] != true || out["by"] != "tasks@proj.iam.gserviceaccount.com" || out["reason"] != "warehouse migration" {
		t.Fatalf("pause = %d %v", code, out)
	}
	// Pausing again changes nothing.
	if code, out := a.do("POST", "/pipeline/pipelines/chain/pause", a.token, []byte(`{"reason":"other"}`), nil); code != 200 || out["reason"] != "warehouse migration" {
		t.Fatalf("second pause = %d %v", code, out)
	}
	a.set(time.Date(2026, 11, 23, 5, 0, 5, 0, time.UTC))
	hdr := map[string]string{"X-CloudScheduler-ScheduleTime": "2026-11-23T05:00:00Z", "X-CloudScheduler": "true"}
	for range 2 { // the job's call and a retry
		code, out := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain"}`), hdr)
		if code != 200 || out["skipped"] != "paused" || out["pipeline"] != "chain" {
			t.Fatalf("scheduled start of a paused pipeline = %d %v", code, out)
		}
	}
	if runs, err := a.ledger.ListRuns(ctx, pipeline.RunFilter{Pipeline: "chain"}); err != nil || len(runs) != 0 {
		t.Fatalf("runs after skipped starts: %v %v", runs, err)
	}
	a.set(time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC))
	a.reconcile()
	if n := a.events.count(pipeline.EventStartMissed); n != 0 {
		t.Fatalf("%d missed-start alerts while paused", n)
	}
	code, out = a.do("GET", "/pipeline/schedules", a.token, nil, nil)
	if code != 200 || !strings.Contains(mustJSON(t, out), `"marks":["skipped: paused"]`) || !strings.Contains(mustJSON(t, out), `"paused":true`) {
		t.Fatalf("schedules = %d %s", code, mustJSON(t, out))
	}
	if code, out := a.do("POST", "/pipeline/pipelines/chain/unpause", a.token, nil, nil); code != 200 || out["paused"] != false || out["resumed_by"] != "tasks@proj.iam.gserviceaccount.com" {
		t.Fatalf("unpause = %d %v", code, out)
	}
	a.advance(time.Minute)
	a.reconcile()
	if n := a.events.count(pipeline.EventStartMissed); n != 0 {
		t.Fatalf("%d missed-start alerts for a date whose fire time fell in the pause", n)
	}
	// Scheduled starts go through again; an operator could start anyway.
	if code, out := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain"}`), hdr); code != 201 || out["run_id"] != "chain@2026-11-23" {
		t.Fatalf("scheduled start after unpause = %d %v", code, out)
	}
}

func TestOperatorStartsAPausedPipeline(t *testing.T) {
	a := newAPI(t)
	if code, out := a.do("POST", "/pipeline/pipelines/chain/pause", a.token, nil, nil); code != 200 || out["paused"] != true {
		t.Fatalf("pause = %d %v", code, out)
	}
	if code, out := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain","date":"2026-11-23"}`), nil); code != 201 || out["created"] != true {
		t.Fatalf("operator start of a paused pipeline = %d %v", code, out)
	}
}

// Bad pause requests get a clear error and change nothing.
func TestPauseBadInput(t *testing.T) {
	a := newAPI(t)
	cases := []struct {
		path, body string
		code       int
		says       string
	}{
		{"/pipeline/pipelines/nope/pause", `{}`, 404, `pipeline "nope"`},
		{"/pipeline/pipelines/chain/pause", `{"reason":"` + strings.Repeat("x", 600) + `"}`, 400, "at most 500"},
		{"/pipeline/pipelines/chain/pause", `{"reason":`, 400, "JSON"},
		{"/pipeline/pipelines/chain/pause", `{"why":"x"}`, 400, "why"},
		{"/pipeline/pipelines/chain/unpause", `[]`, 400, "JSON"},
	}
	for _, c := range cases {
		code, out := a.do("POST", c.path, a.token, []byte(c.body), nil)
		if code != c.code || !strings.Contains(out["error"].(string), c.says) {
			t.Errorf("POST %s %s = %d %v; want %d saying %s", c.path, c.body, code, out, c.code, c.says)
		}
	}
	if code, _ := a.do("POST", "/pipeline/pipelines/chain/pause", a.other, nil, nil); code != 401 && code != 403 {
		t.Errorf("pause by a stranger = %d", code)
	}
	st, err := a.orch.PauseState(context.Background(), "chain")
	if err != nil || st.Paused || st.By != "" {
		t.Errorf("after bad requests the pause state is %+v, %v; want untouched", st, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
