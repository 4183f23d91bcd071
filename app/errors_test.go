package app

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/auth"
)

// A mistyped pipeline in a run ID says the pipeline is unknown, lists the
// loaded ones and suggests the closest.
func TestStatusOfAnUnknownPipeline(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	_, _, err := runArgs(t, "status", "daly@2026-12-01", "--file", repoPipelines, "--data", data)
	if ExitCode(err) != ExitFailed {
		t.Fatalf("exit %d (%v), want 1", ExitCode(err), err)
	}
	for _, want := range []string{`pipeline "daly" is unknown`, "loaded: daily", "did you mean daily?"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// `run` on a date whose run failed says so and suggests `pipeline resume RUN`.
func TestRunOfAFailedRunSuggestsResume(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte("name: broken\nsteps:\n  - {name: fetch, kind: http, max_attempts: 1, http: {url: \"http://127.0.0.1:1/nothing\"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--file", file, "--data", filepath.Join(dir, "data"), "--date", "2026-01-02"}
	_, _, err := runArgs(t, args...)
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "pipeline resume broken@2026-01-02") {
		t.Fatalf("first run: exit %d, %v; want 1 suggesting resume", ExitCode(err), err)
	}
	out, _, err := runArgs(t, args...)
	if ExitCode(err) != ExitFailed {
		t.Fatalf("second run: exit %d, want 1", ExitCode(err))
	}
	if !strings.Contains(out, "run broken@2026-01-02 exists and failed; `pipeline resume broken@2026-01-02`") {
		t.Fatalf("second run output:\n%s", out)
	}
}

// A missing pipeline file is one line naming the path and the way out, exit
// 2, and nothing is created (no data directory, no logs).
func TestMissingPipelineFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	missing := filepath.Join(dir, "pipelines")
	for _, args := range [][]string{
		{"run"}, {"serve", "--port", "0"}, {"status", "daily@2026-01-02"}, {"validate"}, {"schedules"},
	} {
		_, _, err := runArgs(t, append(args, "--file", missing, "--data", data)...)
		if ExitCode(err) != ExitUsage {
			t.Errorf("%v: exit %d (%v), want 2", args, ExitCode(err), err)
			continue
		}
		msg := errorMessage(err)
		if strings.Contains(msg, "\n") || !strings.Contains(msg, missing+": no such file or directory") ||
			!strings.Contains(msg, "run from the repository root or pass -f") {
			t.Errorf("%v: message %q", args, msg)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("%v created %s", args, data)
		}
	}
}

// A bad duration does not hide the other configuration problems: all are
// listed at once, exit 2.
func TestBadDurationDoesNotHideOtherConfigProblems(t *testing.T) {
	t.Setenv("PIPELINE_LEASE_GRACE", "abc")
	t.Setenv("PIPELINE_BACKEND", "cloud")
	t.Setenv("LOG_LEVEL", "loud")
	_, stderr, err := runArgs(t, "validate", "--file", repoPipelines)
	if ExitCode(err) != ExitUsage {
		t.Fatalf("exit %d (%v), want 2", ExitCode(err), err)
	}
	for _, want := range []string{`PIPELINE_LEASE_GRACE: "abc" is not a duration`, `PIPELINE_BACKEND: "cloud" is not local or gcp`, "LOG_LEVEL"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// A second run (or an operator command) while `serve` holds the store names
// the service's address and says to use --url.
func TestStoreHeldByServeNamesItsAddress(t *testing.T) {
	s := serveInProcess(t)
	_, port, _ := net.SplitHostPort(s.addr)
	url := "http://127.0.0.1:" + port
	for _, args := range [][]string{{"run", "daily", "--date", "2026-03-14"}, {"runs"}, {"serve", "--port", "0"}} {
		_, _, err := runArgs(t, append(args, "--file", repoPipelines, "--data", s.data)...)
		if ExitCode(err) != ExitFailed {
			t.Fatalf("%v: exit %d (%v), want 1", args, ExitCode(err), err)
		}
		for _, want := range []string{"held by `pipeline serve` at " + url, "--url " + url} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: error lacks %q: %v", args, want, err)
			}
		}
	}
}

// A port in use is named with the flag and the variable that change it.
func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, _, err = runArgs(t, "serve", "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--no-cron", "--file", repoPipelines, "--data", t.TempDir())
	if ExitCode(err) != ExitFailed {
		t.Fatalf("exit %d (%v), want 1", ExitCode(err), err)
	}
	for _, want := range []string{fmt.Sprintf("port %d is already in use", port), "--port", "PORT="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// A 401 from --url gets the hint that fits its cause.
func TestURL401HintFitsTheCause(t *testing.T) {
	s := serveInProcess(t)
	_, port, _ := net.SplitHostPort(s.addr)
	url := "http://127.0.0.1:" + port

	// --data of another directory, without a key: the key was not found.
	other := filepath.Join(t.TempDir(), "elsewhere")
	_, _, err := runArgs(t, "runs", "--url", url, "--file", repoPipelines, "--data", other)
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "local issuer key was not found") || !strings.Contains(err.Error(), "pass its --data") ||
		strings.Contains(err.Error(), "--audience") {
		t.Fatalf("key not found: exit %d: %v", ExitCode(err), err)
	}

	// Another directory with its own key: signed, but not with this serve's key.
	keyed := filepath.Join(t.TempDir(), "keyed")
	if err := os.MkdirAll(keyed, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.OpenLocalIssuer(filepath.Join(keyed, "local-issuer.pem"), localIssuer, localCaller); err != nil {
		t.Fatal(err)
	}
	_, _, err = runArgs(t, "runs", "--url", url, "--file", repoPipelines, "--data", keyed)
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "another data directory? pass its --data") {
		t.Fatalf("other key: exit %d: %v", ExitCode(err), err)
	}

	// A token for another audience: the audience hint.
	tok, _, err := runArgs(t, "token", "--data", s.data, "--audience", "https://elsewhere.example")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runArgs(t, "runs", "--url", url, "--id-token", strings.TrimSpace(tok), "--file", repoPipelines, "--data", s.data)
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "set --audience") {
		t.Fatalf("audience: exit %d: %v", ExitCode(err), err)
	}
}
