package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/pipelinehq/pipeline/pipeline"
)

// startOpsGCPStack is the gcp stack serving the two-step http pipeline of
// srv, and the flags that point a command at the same emulators.
func startOpsGCPStack(t *testing.T, srv *stepServer) (*gcpStack, []string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "chain.yaml")
	if err := os.WriteFile(file, []byte(chainYAML(srv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGCPStack(t, file)
	c := g.cfg
	return g, []string{
		"--backend", "gcp", "--file", file, "--data", c.Data, "--log-level", "warn",
		"--project", c.Project, "--service-url", c.ServiceURL, "--tasks-location", c.TasksLocation,
		"--tasks-queue", c.TasksQueue, "--tasks-service-account", c.TasksAccount, "--tasks-emulator", c.TasksEmulator,
		"--issuer", c.Issuer, "--allowed-invokers", strings.Join(c.AllowedInvokers, ","),
		"--allowed-operators", strings.Join(c.AllowedOperators, ","), "--ledger-collection", c.LedgerCollection,
	}
}

// PIPELINE_BACKEND=gcp: the commands write to Firestore and Cloud Tasks
// (emulators); the service behind Cloud Tasks runs the steps.
func TestOpsGCPBackendEnqueueStatusResume(t *testing.T) {
	srv := newStepServer(t)
	g, flags := startOpsGCPStack(t, srv)
	run := func(args ...string) (string, string, error) { return runArgs(t, append(args, flags...)...) }
	status := func(id string) pipeline.Run {
		t.Helper()
		out, stderr, err := run("status", id, "--json")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, stderr)
		}
		var r pipeline.Run
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	out, stderr, err := run("enqueue", "fetch", "--date", "2026-05-01", "--wait")
	if err != nil || !strings.Contains(out, "enqueued fetch of chain@2026-05-01 (generation 1)") || !strings.Contains(out, "✓ fetch") {
		t.Fatalf("enqueue: %v\n%s\n%s", err, out, stderr)
	}
	g.waitRun("chain@2026-05-01")
	r := status("chain@2026-05-01")
	if r.Status != pipeline.RunSucceeded || stepOf(t, r, "load").Generation != 1 {
		t.Fatalf("status: %s %+v", r.Status, r.Steps)
	}
	out, _, err = run("status", "chain@2026-05-01")
	if err != nil || !strings.Contains(out, "✓ load") || !strings.Contains(out, "GEN") {
		t.Fatalf("status table: %v\n%s", err, out)
	}

	// A plain duplicate runs nothing; --force runs it again and chains on.
	before := g.emu.Stats()
	_, _, err = run("enqueue", "fetch", "--run", "chain@2026-05-01")
	wantExit(t, err, 1, "already succeeded")
	if after := g.emu.Stats(); after.Created != before.Created || srv.count("/fetch") != 1 {
		t.Fatalf("a plain duplicate created a task or ran the step: %+v, fetch %d", after, srv.count("/fetch"))
	}
	if _, _, err = run("enqueue", "fetch", "--run", "chain@2026-05-01", "--force", "--wait"); err != nil {
		t.Fatalf("force: %v", err)
	}
	g.waitRun("chain@2026-05-01")
	r = status("chain@2026-05-01")
	if f := stepOf(t, r, "fetch"); f.Generation != 2 || !f.Forced || f.Status != pipeline.StepSucceeded {
		t.Fatalf("fetch after --force: %+v", f)
	}
	if srv.count("/fetch") != 2 {
		t.Fatalf("fetch called %d times, want 2", srv.count("/fetch"))
	}

	// Resume from the failed step.
	srv.fails.Store(true)
	_, _, err = run("enqueue", "fetch", "--date", "2026-05-02", "--wait")
	wantExit(t, err, 1, "step fetch of chain@2026-05-02 failed")
	if r := g.waitRun("chain@2026-05-02"); r["status"] != "failed" {
		t.Fatalf("run %v", r)
	}
	srv.fails.Store(false)
	out, _, err = run("resume", "chain@2026-05-02", "--wait")
	if err != nil || !strings.Contains(out, "enqueued fetch of chain@2026-05-02 (generation 2)") || !strings.Contains(out, "status    ✓ succeeded") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if r := status("chain@2026-05-02"); r.Status != pipeline.RunSucceeded || stepOf(t, r, "load").Status != pipeline.StepSucceeded {
		t.Fatalf("after resume: %s %+v", r.Status, r.Steps)
	}
}

// --url: the commands call the deployed service's routes with an identity
// token (here the emulator issuer's, as Google's would be).
func TestOpsGCPOverURL(t *testing.T) {
	srv := newStepServer(t)
	g, _ := startOpsGCPStack(t, srv)
	tok, err := g.emu.Token(g.cfg.ServiceURL, operatorSA)
	if err != nil {
		t.Fatal(err)
	}
	as := func(token string) func(args ...string) (string, string, error) {
		return func(args ...string) (string, string, error) {
			return runArgs(t, append(args, "--url", g.base, "--id-token", token)...)
		}
	}
	run := as(tok)

	out, _, err := run("enqueue", "fetch", "--date", "2026-05-03", "--pipeline", "chain", "--wait")
	if err != nil || !strings.Contains(out, "enqueued fetch of chain@2026-05-03 (generation 1)") {
		t.Fatalf("enqueue --url: %v\n%s", err, out)
	}
	g.waitRun("chain@2026-05-03")

	// The token source is injectable: status with minted tokens.
	var stdout, stderr bytes.Buffer
	var audience string
	c := &statusCmd{RunID: "chain@2026-05-03", opsTarget: opsTarget{URL: g.base, JSON: true,
		tokens: func(_ context.Context, aud string) (oauth2.TokenSource, error) {
			audience = aud
			return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}), nil
		}}}
	if err := c.Run(context.Background(), &Config{}, &appEnv{stdout: &stdout, stderr: &stderr}); err != nil {
		t.Fatalf("status: %v", err)
	}
	var r pipeline.Run
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Status != pipeline.RunSucceeded || audience != g.base {
		t.Fatalf("status over url: %v %s audience %q", err, r.Status, audience)
	}

	_, _, err = run("enqueue", "fetch", "--run", "chain@2026-05-03")
	wantExit(t, err, 1, "already succeeded", "HTTP 409")

	// Resume over the URL.
	srv.fails.Store(true)
	_, _, err = run("enqueue", "fetch", "--date", "2026-05-04", "--pipeline", "chain", "--wait")
	wantExit(t, err, 1, "failed")
	g.waitRun("chain@2026-05-04")
	srv.fails.Store(false)
	out, _, err = run("resume", "chain@2026-05-04", "--wait")
	if err != nil || !strings.Contains(out, "status    ✓ succeeded") {
		t.Fatalf("resume --url: %v\n%s", err, out)
	}

	// Callers: an invoker is not an operator; a stranger is nobody; no
	// token at all is refused with a hint.
	invoker, _ := g.emu.Token(g.cfg.ServiceURL, tasksSA)
	_, _, err = as(invoker)("resume", "chain@2026-05-04")
	wantExit(t, err, 1, "HTTP 403", "ALLOWED_OPERATORS")
	stranger, _ := g.emu.Token(g.cfg.ServiceURL, "mallory@example.com")
	_, _, err = as(stranger)("status", "chain@2026-05-04")
	wantExit(t, err, 1, "HTTP 403")
	nc := &statusCmd{RunID: "chain@2026-05-04", opsTarget: opsTarget{URL: g.base,
		tokens: func(context.Context, string) (oauth2.TokenSource, error) { return nil, errors.New("no credentials") }}}
	err = nc.Run(context.Background(), &Config{}, &appEnv{stdout: &stdout, stderr: &stderr})
	// No credentials: the hint says so, not "--audience".
	wantExit(t, err, 1, "HTTP 401", "no Google credentials were found", "gcloud auth application-default login")
	if strings.Contains(err.Error(), "--audience") {
		t.Fatalf("the audience hint for a missing token: %v", err)
	}
}
