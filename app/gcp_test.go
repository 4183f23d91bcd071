package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/queue/cloudtasks/emulator"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeBrowser()
	fsemu.Stop()
	os.Exit(code)
}

const (
	tasksSA     = "tasks@demo-pipeline.iam.gserviceaccount.com"
	schedulerSA = "scheduler@demo-pipeline.iam.gserviceaccount.com"
	operatorSA  = "alice@example.com"
)

// gcpStack is the gcp backend end to end on one machine: the Firestore
// emulator, the Cloud Tasks emulator (real gRPC; real HTTP dispatch with
// OIDC tokens from its own issuer) and the service as `serve` wires it.
type gcpStack struct {
	t    *testing.T
	cfg  *Config
	app  *app
	emu  *emulator.Emulator
	base string
}

func startGCPStack(t *testing.T, files ...string) *gcpStack {
	t.Helper()
	return startGCPStackWith(t, nil, files...)
}

// startGCPStackWith is startGCPStack with the configuration changed by edit.
func startGCPStackWith(t *testing.T, edit func(*Config), files ...string) *gcpStack {
	t.Helper()
	return startGCPStackOnWith(t, startTasksEmulator(t), edit, files...)
}

// startTasksEmulator starts a Cloud Tasks emulator for the test.
func startTasksEmulator(t *testing.T) *emulator.Emulator {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	emu, err := emulator.Start(ctx, emulator.Config{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

// startGCPStackOn starts the service on its own Firestore collection,
// enqueueing to the queue of emu (which may be shared with other stacks).
func startGCPStackOn(t *testing.T, emu *emulator.Emulator, files ...string) *gcpStack {
	t.Helper()
	return startGCPStackOnWith(t, emu, nil, files...)
}

// startGCPStackOnWith is startGCPStackOn with the configuration changed by
// edit.
func startGCPStackOnWith(t *testing.T, emu *emulator.Emulator, edit func(*Config), files ...string) *gcpStack {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", fsemu.Host(t))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if len(files) == 0 {
		files = []string{repoPipelines}
	}
	cfg := &Config{
		File: files, Backend: "gcp", Data: t.TempDir(), Auth: "on", LogLevel: "warn", LeaseGrace: durationOf(2 * time.Second),
		Project: "demo-pipeline", ServiceURL: base, TasksLocation: "local", TasksQueue: "pipeline",
		TasksAccount: tasksSA, TasksEmulator: emu.Addr(), Issuer: emu.IssuerURL(),
		AllowedInvokers: []string{tasksSA, schedulerSA}, AllowedOperators: []string{operatorSA},
		FirestoreDB: "(default)", LedgerCollection: fsemu.Collection(t), stepSets: exampleSteps(),
		firestoreEmulator: fsemu.Host(t),
	}
	if edit != nil {
		edit(cfg)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if testing.Verbose() {
		log = newLogger(cfg, os.Stderr)
	}
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	ln, err := a.listen(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.serve(sctx, ln, nil) }()
	t.Cleanup(func() { stop(); <-done })
	return &gcpStack{t: t, cfg: cfg, app: a, emu: emu, base: base}
}

// call makes a request as email, with a token from the emulator's issuer.
func (g *gcpStack) call(method, path, email string, body any, hdr map[string]string) (int, map[string]any) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, g.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if email != "" {
		tok, err := g.emu.Token(g.cfg.ServiceURL, email)
		if err != nil {
			g.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (g *gcpStack) waitRun(id string) map[string]any {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var out map[string]any
	for time.Now().Before(deadline) {
		var code int
		code, out = g.call("GET", "/pipeline/runs/"+id, schedulerSA, nil, nil)
		if code == 200 && (out["status"] == "succeeded" || out["status"] == "failed" || out["status"] == "cancelled") {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("run %s did not end: %v", id, out)
	return nil
}

// waitQueueIdle waits (generously: the machine may be loaded) until the
// Cloud Tasks emulator holds no task and has no attempt in flight, and
// returns its counters then.
func (g *gcpStack) waitQueueIdle() emulator.Stats {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(g.t.Context(), 60*time.Second)
	defer cancel()
	if err := g.emu.WaitIdle(ctx); err != nil {
		g.t.Fatalf("Cloud Tasks emulator did not settle: %v (stats %+v)", err, g.emu.Stats())
	}
	return g.emu.Stats()
}

// PIPELINE_BACKEND=gcp runs the full daily chain against the Firestore
// emulator and a Cloud Tasks v2 gRPC endpoint dispatching with OIDC tokens.
func TestGCPBackendRunsTheDailyChain(t *testing.T) {
	g := startGCPStack(t)
	hdr := map[string]string{"X-CloudScheduler-ScheduleTime": "2026-11-23T05:00:00Z", "X-CloudScheduler": "true"}
	code, out := g.call("POST", "/pipeline/start", schedulerSA, map[string]string{"pipeline": "daily"}, hdr)
	if code != 201 || out["run_id"] != "daily@2026-11-23" {
		t.Fatalf("start = %d %v", code, out)
	}
	// A Scheduler retry of the same tick maps to the same run and creates no task.
	code, out = g.call("POST", "/pipeline/start", schedulerSA, map[string]string{"pipeline": "daily"}, hdr)
	if code != 200 || out["created"] != false {
		t.Fatalf("duplicate start = %d %v", code, out)
	}
	run := g.waitRun("daily@2026-11-23")
	if run["status"] != "succeeded" {
		t.Fatalf("run = %v", run)
	}
	for _, s := range run["steps"].([]any) {
		st := s.(map[string]any)
		if st["status"] != "succeeded" || st["attempts"] != float64(1) {
			t.Fatalf("step %v", st)
		}
	}
	report := filepath.Join(g.cfg.Data, "files", "daily", "2026-11-23", "report.md")
	if _, err := os.Stat(report); err != nil {
		t.Fatalf("report not written: %v", err)
	}
	// The run reads succeeded as soon as the last step commits, while that
	// delivery's answer may still be on its way back to the emulator: wait
	// until the emulator has settled every task before reading its counters.
	st := g.waitQueueIdle()
	if st.Created != 3 || st.Succeeded != 3 {
		t.Fatalf("emulator stats %+v: want 3 tasks created and succeeded", st)
	}
	// Callers: no token 401; a valid token from a caller not allowed 403.
	if code, out := g.call("GET", "/pipeline/runs", "", nil, nil); code != 401 {
		t.Fatalf("no token: %d %v", code, out)
	}
	if code, out := g.call("POST", "/pipeline/start", "intruder@example.com", map[string]string{"pipeline": "daily"}, nil); code != 403 {
		t.Fatalf("intruder: %d %v", code, out)
	}
}

// Two deployments (say staging and prod, two collections) sharing one Cloud
// Tasks queue both finish their run of the same day: task names carry the
// ledger's namespace, so neither run's tasks are taken for the other's
// ("already exists").
func TestGCPTwoLedgersShareAQueue(t *testing.T) {
	emu := startTasksEmulator(t)
	prod, staging := startGCPStackOn(t, emu), startGCPStackOn(t, emu)
	hdr := map[string]string{"X-CloudScheduler-ScheduleTime": "2026-11-23T05:00:00Z", "X-CloudScheduler": "true"}
	for _, g := range []*gcpStack{prod, staging} {
		if code, out := g.call("POST", "/pipeline/start", schedulerSA, map[string]string{"pipeline": "daily"}, hdr); code != 201 {
			t.Fatalf("start = %d %v", code, out)
		}
	}
	for name, g := range map[string]*gcpStack{"prod": prod, "staging": staging} {
		if run := g.waitRun("daily@2026-11-23"); run["status"] != "succeeded" {
			t.Fatalf("%s run = %v", name, run)
		}
	}
	// The last deliveries' answers may still be in flight when the runs read
	// succeeded: wait until the shared emulator has settled every task.
	if st := prod.waitQueueIdle(); st.Created != 6 || st.Succeeded != 6 {
		t.Fatalf("emulator stats %+v: want 6 tasks created and succeeded (3 per deployment)", st)
	}
}

// A duplicate delivery of a finished step, through Cloud Tasks, re-enqueues its
// successor (AlreadyExists on the reused name) and runs nothing again.
func TestGCPDuplicateDeliveryHitsAlreadyExists(t *testing.T) {
	g := startGCPStack(t)
	code, _ := g.call("POST", "/pipeline/start", schedulerSA, map[string]any{"pipeline": "daily", "date": "2026-11-20"}, nil)
	if code != 201 {
		t.Fatalf("start = %d", code)
	}
	run := g.waitRun("daily@2026-11-20")
	before := g.waitQueueIdle()
	// A duplicate carries what the original task carried: the run's params.
	body := map[string]any{"run_id": "daily@2026-11-20", "step": "extract", "generation": 1, "date": "2026-11-20", "params": run["params"]}
	code, out := g.call("POST", "/pipeline/steps/extract", tasksSA, body, nil)
	if code != 200 || out["outcome"] != "already_succeeded" {
		t.Fatalf("duplicate delivery = %d %v", code, out)
	}
	after := g.emu.Stats()
	if after.AlreadyExists != before.AlreadyExists+1 || after.Created != before.Created {
		t.Fatalf("stats before %+v after %+v: want one AlreadyExists, no new task", before, after)
	}
}
