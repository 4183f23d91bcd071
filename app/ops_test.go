package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

// stepServer is what the test pipelines' http steps call: it counts the
// calls per path and fails them (500) while told to.
type stepServer struct {
	*httptest.Server
	mu    sync.Mutex
	hits  map[string]int
	fails atomic.Bool
}

func newStepServer(t *testing.T) *stepServer {
	s := &stepServer{hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		if s.fails.Load() {
			http.Error(w, "down for the test", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *stepServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// chainYAML is a two-step pipeline of http steps on srv: fetch -> load.
func chainYAML(srv string) string {
	return fmt.Sprintf(`
name: chain
time_zone: UTC
steps:
  - {name: fetch, kind: http, max_attempts: 1, http: {url: "%s/fetch"}}
  - {name: load, kind: http, max_attempts: 1, http: {url: "%s/load"}}
`, srv, srv)
}

// opsEnv runs operator commands on the embedded backends of a temp dir.
type opsEnv struct {
	t    *testing.T
	file string
	data string
}

func newOpsEnv(t *testing.T, yaml string) *opsEnv {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return &opsEnv{t: t, file: file, data: filepath.Join(dir, "data")}
}

func (e *opsEnv) run(args ...string) (string, string, error) {
	e.t.Helper()
	return runArgs(e.t, append(args, "--file", e.file, "--data", e.data)...)
}

// ok runs a command that must succeed and returns its stdout.
func (e *opsEnv) ok(args ...string) string {
	e.t.Helper()
	out, stderr, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("%v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr)
	}
	return out
}

// status reads a run through `status --json`.
func (e *opsEnv) status(runID string) pipeline.Run {
	e.t.Helper()
	var r pipeline.Run
	if err := json.Unmarshal([]byte(e.ok("status", runID, "--json")), &r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// wantExit checks that err is exit code with a message containing each want.
func wantExit(t *testing.T, err error, code int, wants ...string) {
	t.Helper()
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != code {
		t.Fatalf("err = %v, want exit %d", err, code)
	}
	for _, w := range wants {
		if !strings.Contains(ec.msg, w) {
			t.Errorf("message %q lacks %q", ec.msg, w)
		}
	}
}

func stepOf(t *testing.T, r pipeline.Run, name string) pipeline.StepRun {
	t.Helper()
	s, ok := findStep(r, name)
	if !ok {
		t.Fatalf("run %s has no step %s: %+v", r.ID, name, r.Steps)
	}
	return s
}

// The acceptance test of ad hoc enqueue: a plain duplicate of a succeeded
// step runs nothing, --force runs it again (a new generation) and chains on.
func TestOpsForcedRerunRunsAgainPlainDuplicateDoesNot(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))

	out := e.ok("enqueue", "fetch", "--date", "2026-04-01")
	for _, want := range []string{"enqueued fetch of chain@2026-04-01 (generation 1)", "task ", "created run chain@2026-04-01", "✓ fetch", "✓ load", "run chain@2026-04-01 succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if srv.count("/fetch") != 1 || srv.count("/load") != 1 {
		t.Fatalf("calls fetch=%d load=%d, want 1 each", srv.count("/fetch"), srv.count("/load"))
	}

	_, _, err := e.run("enqueue", "fetch", "--run", "chain@2026-04-01")
	wantExit(t, err, 1, "already succeeded", "--force")
	_, _, err = e.run("enqueue", "fetch", "--date", "2026-04-01")
	wantExit(t, err, 1, "already succeeded")
	if srv.count("/fetch") != 1 {
		t.Fatalf("a plain duplicate ran the step: %d calls", srv.count("/fetch"))
	}
	if s := stepOf(t, e.status("chain@2026-04-01"), "fetch"); s.Generation != 1 || s.Attempts != 1 {
		t.Fatalf("duplicate changed the step: %+v", s)
	}

	out = e.ok("enqueue", "fetch", "--run", "chain@2026-04-01", "--force")
	if !strings.Contains(out, "(generation 2, forced)") {
		t.Errorf("output:\n%s", out)
	}
	if srv.count("/fetch") != 2 || srv.count("/load") != 2 {
		t.Fatalf("forced re-run: calls fetch=%d load=%d, want 2 each (it chains on)", srv.count("/fetch"), srv.count("/load"))
	}
	r := e.status("chain@2026-04-01")
	if f := stepOf(t, r, "fetch"); f.Generation != 2 || !f.Forced || f.Status != pipeline.StepSucceeded || f.Attempts != 1 {
		t.Fatalf("fetch after --force: %+v", f)
	}
	if l := stepOf(t, r, "load"); l.Generation != 2 || l.Status != pipeline.StepSucceeded {
		t.Fatalf("load after --force: %+v", l)
	}
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s", r.Status)
	}
}

func TestOpsEnqueueOnlyAndTheGate(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))

	// The gate: load waits for fetch.
	_, _, err := e.run("enqueue", "load", "--date", "2026-04-02")
	wantExit(t, err, 1, "waits for", "does not exist")
	if srv.count("/load") != 0 {
		t.Fatal("a gated step ran")
	}
	// Refused, it created nothing.
	if _, _, err := e.run("status", "chain@2026-04-02"); err == nil {
		t.Fatal("a refused enqueue created the run")
	}

	// --only runs fetch and stops there; the command returns once nothing
	// more happens in the run.
	out := e.ok("enqueue", "fetch", "--date", "2026-04-13", "--only", "--json")
	var res enqueueOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Enqueued.TaskName == "" || res.Run == nil || !res.Enqueued.Created {
		t.Fatalf("json: %s", out)
	}
	if f, l := stepOf(t, *res.Run, "fetch"), stepOf(t, *res.Run, "load"); f.Status != pipeline.StepSucceeded || l.Status != pipeline.StepPending {
		t.Fatalf("after --only: fetch %s, load %s", f.Status, l.Status)
	}
	if srv.count("/fetch") != 1 || srv.count("/load") != 0 {
		t.Fatalf("calls fetch=%d load=%d", srv.count("/fetch"), srv.count("/load"))
	}

	// --force runs a step whose predecessor has not succeeded.
	e.ok("enqueue", "load", "--date", "2026-04-03", "--force", "--only")
	if r := e.status("chain@2026-04-03"); stepOf(t, r, "load").Status != pipeline.StepSucceeded || stepOf(t, r, "fetch").Status != pipeline.StepPending {
		t.Fatalf("forced load: %+v", r.Steps)
	}

	// Parameters of a run --date creates.
	e.ok("enqueue", "fetch", "--date", "2026-04-04", "-p", "region=eu", "--only")
	if r := e.status("chain@2026-04-04"); r.Params["region"] != "eu" {
		t.Fatalf("params %v", r.Params)
	}
}

func TestOpsResumeFromTheFailedStep(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	e.ok("enqueue", "fetch", "--date", "2026-04-05", "--only")
	srv.fails.Store(true)
	out, _, err := e.run("enqueue", "load", "--run", "chain@2026-04-05")
	wantExit(t, err, 1, "step load of chain@2026-04-05 failed", "500")
	if !strings.Contains(out, "✗ load") {
		t.Fatalf("output:\n%s", out)
	}
	// watch of a failed run: its final state, exit 1.
	out, _, err = e.run("watch", "chain@2026-04-05")
	wantExit(t, err, 1, "run chain@2026-04-05 failed")
	if !strings.Contains(out, "status    ✗ failed") {
		t.Fatalf("watch output:\n%s", out)
	}

	srv.fails.Store(false)
	out = e.ok("resume", "chain@2026-04-05")
	if !strings.Contains(out, "enqueued load of chain@2026-04-05 (generation 2)") {
		t.Fatalf("resume output:\n%s", out)
	}
	r := e.status("chain@2026-04-05")
	if r.Status != pipeline.RunSucceeded || stepOf(t, r, "fetch").Generation != 1 || stepOf(t, r, "load").Generation != 2 {
		t.Fatalf("after resume: %s %+v", r.Status, r.Steps)
	}
	if srv.count("/fetch") != 1 {
		t.Fatalf("resume re-ran a succeeded step: fetch called %d times", srv.count("/fetch"))
	}
	_, _, err = e.run("resume", "chain@2026-04-05")
	wantExit(t, err, 1, "already succeeded")
}

func TestOpsCancel(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	e.ok("enqueue", "fetch", "--date", "2026-04-06", "--only")
	out := e.ok("cancel", "chain@2026-04-06")
	if !strings.Contains(out, "cancelled chain@2026-04-06") || !strings.Contains(out, "cancelled") {
		t.Fatalf("output:\n%s", out)
	}
	r := e.status("chain@2026-04-06")
	if r.Status != pipeline.RunCancelled || stepOf(t, r, "load").Status != pipeline.StepCancelled {
		t.Fatalf("after cancel: %s %+v", r.Status, r.Steps)
	}
	_, _, err := e.run("cancel", "chain@2026-04-06")
	wantExit(t, err, 1, "already cancelled")
	if srv.count("/load") != 0 {
		t.Fatalf("load ran in a cancelled run")
	}
	// An operator's enqueue reopens it: that is the way back.
	e.ok("enqueue", "load", "--run", "chain@2026-04-06")
	if r := e.status("chain@2026-04-06"); r.Status != pipeline.RunSucceeded || srv.count("/load") != 1 {
		t.Fatalf("enqueue after cancel: %s, load calls %d", r.Status, srv.count("/load"))
	}
}

func TestOpsBackfillIsIdempotent(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	out := e.ok("backfill", "--from", "2026-01-01", "--to", "2026-01-04", "--max-parallel", "2")
	for _, want := range []string{"4 run(s), 4 new, 2 launched now; at most 2 at once", "chain@2026-01-04", "new, waits for a slot"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if srv.count("/fetch") != 4 || srv.count("/load") != 4 {
		t.Fatalf("calls fetch=%d load=%d, want 4 each", srv.count("/fetch"), srv.count("/load"))
	}
	out = e.ok("backfill", "--from", "2026-01-01", "--to", "2026-01-04", "--max-parallel", "2", "--json")
	var res backfillOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Runs) != 4 || len(res.Launched) != 0 {
		t.Fatalf("repeat: %+v", res)
	}
	for _, r := range res.Runs {
		if r.Created || r.Status != pipeline.RunSucceeded {
			t.Fatalf("repeat created or changed %+v", r)
		}
	}
	if srv.count("/fetch") != 4 {
		t.Fatalf("a repeated backfill ran steps again: %d", srv.count("/fetch"))
	}
}

func TestOpsRunsAndStats(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	e.ok("enqueue", "fetch", "--date", "2026-04-07")
	srv.fails.Store(true)
	_, _, err := e.run("enqueue", "fetch", "--date", "2026-04-08")
	wantExit(t, err, 1, "failed")

	out := e.ok("runs")
	for _, want := range []string{"RUN", "chain@2026-04-07", "✓ succeeded", "chain@2026-04-08", "✗ failed", "adhoc"} {
		if !strings.Contains(out, want) {
			t.Errorf("runs output lacks %q:\n%s", want, out)
		}
	}
	var list struct{ Runs []pipeline.Run }
	if err := json.Unmarshal([]byte(e.ok("runs", "--status", "failed", "--json")), &list); err != nil || len(list.Runs) != 1 || list.Runs[0].ID != "chain@2026-04-08" {
		t.Fatalf("runs --status failed: %v %+v", err, list)
	}
	if out := e.ok("runs", "--pipeline", "other"); !strings.Contains(out, "no runs match") {
		t.Fatalf("runs of another pipeline:\n%s", out)
	}

	out = e.ok("stats", "--since", "7d")
	for _, want := range []string{"PIPELINE", "chain", "(run)", "50.0%", "fetch", "P95"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}
	var st statsResult
	if err := json.Unmarshal([]byte(e.ok("stats", "--json")), &st); err != nil || len(st.Pipelines) != 1 {
		t.Fatalf("stats --json: %v %+v", err, st)
	}
	p := st.Pipelines[0]
	if p.Runs != 2 || p.Succeeded != 1 || p.Failed != 1 || p.SuccessRate != 0.5 || len(p.Steps) != 2 || p.Steps[0].Runs != 2 {
		t.Fatalf("stats %+v", p)
	}

	out = e.ok("status", "chain@2026-04-08")
	for _, want := range []string{"run       chain@2026-04-08", "version   ", "(the definition the run keeps)", "STEP", "GEN", "✗ fetch", "1/1", "500"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

func TestOpsBadInput(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	e.ok("enqueue", "fetch", "--date", "2026-04-09")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"enqueue", "fetch"}, "give the run"},
		{[]string{"enqueue", "fetch", "--date", "2026-04-09", "--run", "chain@2026-04-09"}, "not both"},
		{[]string{"enqueue", "fetch", "--date", "2026-13-40"}, `--date "2026-13-40" is not a date`},
		{[]string{"enqueue", "fetch", "--run", "chain"}, `run "chain" is not PIPELINE@KEY`},
		{[]string{"enqueue", "nope", "--run", "chain@2026-04-09"}, `has no step "nope"`},
		{[]string{"enqueue", "fetch", "--run", "chain@2026-04-09", "-p", "a=b"}, "--param"},
		{[]string{"enqueue", "fetch", "--date", "2026-04-09", "--pipeline", "other"}, `pipeline "other"`},
		{[]string{"status", "chain@2026-01-31"}, "chain@2026-01-31: not found"},
		{[]string{"status", "not a run"}, "is not PIPELINE@KEY"},
		{[]string{"watch", "chain@2026-01-31"}, "not found"},
		{[]string{"resume", "chain@2026-01-31"}, "not found"},
		{[]string{"cancel", "chain@@x"}, "is not PIPELINE@KEY"},
		{[]string{"backfill", "--from", "2026-02-03", "--to", "2026-02-01"}, "--from 2026-02-03 is after --to 2026-02-01"},
		{[]string{"backfill", "--from", "yesterday", "--to", "2026-02-01"}, `--from "yesterday" is not a date`},
		{[]string{"backfill", "--from", "2026-02-01", "--to", "2026-02-01", "--max-parallel", "0"}, "--max-parallel 0 must be 1..50"},
		{[]string{"runs", "--since", "last week"}, `--since "last week"`},
		{[]string{"runs", "--status", "done"}, `--status "done" is not one of`},
		{[]string{"stats", "--since", "soon"}, `--since "soon"`},
		{[]string{"stats", "--since", "800000d"}, `--since "800000d" reaches back more than 36500 days`},
		{[]string{"stats", "--since", "9223372036854775807d"}, `--since "9223372036854775807d" reaches back more than 36500 days`},
		{[]string{"runs", "--since", "800000d"}, `--since "800000d" reaches back more than 36500 days`},
		{[]string{"enqueue", "fetch", "--run", "chain@2026-04-09", "--url", "ftp://x"}, "is not an http(s) URL"},
		{[]string{"status", "chain@2026-04-09", "--id-token", "x"}, "--id-token is only used with --url"},
	} {
		_, _, err := e.run(c.args...)
		t.Run(strings.Join(c.args, " "), func(t *testing.T) { wantExit(t, err, 1, c.want) })
	}
	// Usage errors are kong's: exit 2.
	_, stderr, err := e.run("backfill", "--from", "2026-02-01")
	if ec := (exitCode{}); !errors.As(err, &ec) || ec.code != 2 || !strings.Contains(stderr, "--to") {
		t.Fatalf("missing --to: %v %s", err, stderr)
	}
	// Nothing of the above changed the ledger.
	var list struct{ Runs []pipeline.Run }
	if err := json.Unmarshal([]byte(e.ok("runs", "--json")), &list); err != nil || len(list.Runs) != 1 {
		t.Fatalf("runs after bad input: %v %+v", err, list.Runs)
	}
}

// watch on the local backend runs what is left on the queue: a command that
// gave up early (--timeout) left its run going, and watch finishes it.
func TestOpsWatchFinishesWorkLeftOnTheQueue(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	_, _, err := e.run("enqueue", "fetch", "--date", "2026-04-10", "--timeout", "1ns")
	if err != nil {
		wantExit(t, err, 1, "still going after --timeout 1ns", "pipeline watch chain@2026-04-10")
	}
	out := e.ok("watch", "chain@2026-04-10", "--interval", "20ms")
	if !strings.Contains(out, "run chain@2026-04-10 succeeded") || !strings.Contains(out, "✓ load") {
		t.Fatalf("watch output:\n%s", out)
	}
	if srv.count("/fetch") != 1 || srv.count("/load") != 1 {
		t.Fatalf("calls fetch=%d load=%d, want 1 each", srv.count("/fetch"), srv.count("/load"))
	}
	// A run that is going nowhere: watch says so instead of waiting forever.
	e.ok("enqueue", "fetch", "--date", "2026-04-11", "--only")
	out, stderr, err := e.run("watch", "chain@2026-04-11", "--json")
	if err != nil || !strings.Contains(stderr, "nothing is running or queued") || !strings.Contains(out, `"status": "running"`) {
		t.Fatalf("watch of an idle run: %v\n%s\n%s", err, out, stderr)
	}
}

// While another process (pipeline serve) holds the local store, commands
// say how to reach it instead.
func TestOpsLocalStoreInUse(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	if err := os.MkdirAll(e.data, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := boltledger.OpenDB(filepath.Join(e.data, "pipeline.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, _, err = e.run("runs")
	wantExit(t, err, 1, "in use by another pipeline process", "--url http://127.0.0.1:PORT")
}

// --url against a local `pipeline serve` (auth off): the same commands over
// the service's routes; errors come back with their status code.
func TestOpsURLAgainstALocalService(t *testing.T) {
	srv := newStepServer(t)
	e := newOpsEnv(t, chainYAML(srv.URL))
	cfg := &Config{File: []string{e.file}, Backend: "local", Data: e.data, Auth: "off", LogLevel: "error", LeaseGrace: 30 * time.Second, stepSets: exampleSteps()}
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
	run := func(args ...string) (string, string, error) { return runArgs(t, append(args, url...)...) }

	out, _, err := run("enqueue", "fetch", "--date", "2026-04-12", "--pipeline", "chain", "--wait")
	if err != nil || !strings.Contains(out, "enqueued fetch of chain@2026-04-12 (generation 1)") || !strings.Contains(out, "✓ fetch") {
		t.Fatalf("enqueue --url: %v\n%s", err, out)
	}
	_, _, err = run("enqueue", "fetch", "--run", "chain@2026-04-12")
	wantExit(t, err, 1, "already succeeded", "HTTP 409")
	_, _, err = run("status", "chain@2026-02-02")
	wantExit(t, err, 1, "not found", "HTTP 404")
	_, _, err = run("enqueue", "fetch", "--date", "2026-04-12")
	wantExit(t, err, 1, "--pipeline is required")
	out, _, err = run("watch", "chain@2026-04-12", "--interval", "20ms")
	if err != nil || !strings.Contains(out, "run chain@2026-04-12 succeeded") {
		t.Fatalf("watch --url: %v\n%s", err, out)
	}
	out, _, err = run("runs", "--json")
	if err != nil || !strings.Contains(out, "chain@2026-04-12") {
		t.Fatalf("runs --url: %v\n%s", err, out)
	}
	out, _, err = run("stats")
	if err != nil || !strings.Contains(out, "chain") {
		t.Fatalf("stats --url: %v\n%s", err, out)
	}
	out, _, err = run("backfill", "--from", "2026-03-01", "--to", "2026-03-02", "--pipeline", "chain", "--wait")
	if err != nil || !strings.Contains(out, "2 run(s), 2 new") || strings.Count(out, "✓ succeeded") != 2 {
		t.Fatalf("backfill --url: %v\n%s", err, out)
	}
}

// On a terminal the progress is a block redrawn in place.
func TestProgressRedrawsOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true, seen: map[string]string{}}
	r := pipeline.Run{ID: "p@2026-01-01", Status: pipeline.RunRunning, Steps: []pipeline.StepRun{
		{Step: "a", Status: pipeline.StepRunning, Generation: 1, Attempts: 1, MaxAttempts: 3},
		{Step: "b", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3},
	}}
	p.show([]pipeline.Run{r})
	p.show([]pipeline.Run{r}) // unchanged: nothing drawn
	first := buf.String()
	if strings.Contains(first, "\x1b[") || strings.Count(first, "\n") != 3 || !strings.Contains(first, "▸ a") {
		t.Fatalf("first draw %q", first)
	}
	r.Steps[0].Status, r.Steps[1].Status = pipeline.StepSucceeded, pipeline.StepRunning
	p.show([]pipeline.Run{r})
	second := strings.TrimPrefix(buf.String(), first)
	if !strings.HasPrefix(second, "\x1b[3F\x1b[J") || !strings.Contains(second, "✓ a") || !strings.Contains(second, "▸ b") {
		t.Fatalf("redraw %q", second)
	}
}
