package app

import (
	"context"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// On the gcp backend (Firestore and Cloud Tasks emulators): an operator's
// pause is recorded in Firestore with the caller, the Scheduler's start is
// skipped and creates no run (nor does its retry), the invoker cannot pause,
// and after unpause the Scheduler's start creates the run.
func TestGCPBackendPause(t *testing.T) {
	g := startGCPStack(t)
	code, out := g.call("POST", "/pipeline/pipelines/daily/pause", schedulerSA, map[string]string{"reason": "nope"}, nil)
	if code != 403 {
		t.Fatalf("pause by the Scheduler's account = %d %v; want 403 (operators only)", code, out)
	}
	code, out = g.call("POST", "/pipeline/pipelines/daily/pause", operatorSA, map[string]string{"reason": "migration"}, nil)
	if code != 200 || out["paused"] != true || out["by"] != operatorSA || out["reason"] != "migration" {
		t.Fatalf("pause = %d %v", code, out)
	}
	hdr := map[string]string{"X-CloudScheduler-ScheduleTime": "2026-11-23T05:00:00Z", "X-CloudScheduler": "true"}
	for range 2 {
		code, out = g.call("POST", "/pipeline/start", schedulerSA, map[string]string{"pipeline": "daily"}, hdr)
		if code != 200 || out["skipped"] != "paused" {
			t.Fatalf("scheduled start while paused = %d %v", code, out)
		}
	}
	runs, err := g.app.orch.Ledger().ListRuns(context.Background(), pipeline.RunFilter{Pipeline: "daily"})
	if err != nil || len(runs) != 0 {
		t.Fatalf("runs in Firestore after skipped starts: %v %v", runs, err)
	}
	code, out = g.call("GET", "/pipeline/schedules", operatorSA, nil, nil)
	if code != 200 {
		t.Fatalf("schedules = %d %v", code, out)
	}
	if code, out = g.call("POST", "/pipeline/pipelines/daily/unpause", operatorSA, nil, nil); code != 200 || out["paused"] != false {
		t.Fatalf("unpause = %d %v", code, out)
	}
	code, out = g.call("POST", "/pipeline/start", schedulerSA, map[string]string{"pipeline": "daily"}, hdr)
	if code != 201 || out["run_id"] != "daily@2026-11-23" {
		t.Fatalf("scheduled start after unpause = %d %v", code, out)
	}
	g.waitRun("daily@2026-11-23")
}
