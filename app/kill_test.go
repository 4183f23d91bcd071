package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/internal/testbin"
)

// binary is the pipeline command, built once per test binary.
func binary(t *testing.T) string {
	t.Helper()
	return testbin.Build(t, "../cmd/pipeline")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitOutput waits (generously) until the process's output contains want:
// the output is copied from the child's pipe by a goroutine of exec, so what
// the child printed before answering a request may land a moment later.
func (p *proc) waitOutput(t *testing.T, want, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in the output:\n%s", what, want, p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startServe(t *testing.T, env []string, port int) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--no-cron")
	cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("PORT=%d", port))...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second) // a loaded machine starts slowly
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("service did not become healthy:\n%s", out.String())
	return nil
}

// A `pipeline serve` killed with SIGKILL mid-run and started again finishes
// the run; only the step in flight at the kill runs a second time.
func TestKill9MidRunAndRestartFinishesTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var mu sync.Mutex
	hits := map[string]int{}
	slowStarted := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		step := strings.TrimPrefix(r.URL.Path, "/")
		mu.Lock()
		hits[step]++
		n := hits[step]
		mu.Unlock()
		if step == "two" && n == 1 {
			close(slowStarted)
			select { // hang until the test ends: the process is killed meanwhile
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"step":%q,"hit":%d}`, step, n)
	}))
	defer target.Close()

	dir := t.TempDir()
	file := filepath.Join(dir, "kill.yaml")
	yaml := fmt.Sprintf(`
name: killme
time_zone: UTC
steps:
  - {name: one, kind: http, after: [], http: {url: "%[1]s/one"}}
  - {name: two, kind: http, timeout: 2s, max_attempts: 3, http: {url: "%[1]s/two"}}
  - {name: three, kind: http, http: {url: "%[1]s/three"}}
`, target.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PIPELINE_FILE=" + file, "PIPELINE_DATA=" + filepath.Join(dir, "data"), "PIPELINE_AUTH=off", "PIPELINE_LEASE_GRACE=1s"}
	port := freePort(t)
	first := startServe(t, env, port)
	// The announcement is printed before the service listens, but it reaches
	// first.out through exec's copying goroutine, maybe after /healthz answered.
	first.waitOutput(t, "AUTHENTICATION IS OFF", "auth off was not announced loudly")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	resp, err := http.Post(base+"/pipeline/start", "application/json", strings.NewReader(`{"pipeline":"killme","date":"2026-11-23"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("start: %s", resp.Status)
	}
	select {
	case <-slowStarted:
	case <-time.After(60 * time.Second):
		t.Fatalf("step two never started:\n%s", first.out.String())
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()

	second := startServe(t, env, port)
	deadline := time.Now().Add(60 * time.Second)
	var run struct {
		Status string `json:"status"`
		Steps  []struct {
			Step     string `json:"step"`
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"steps"`
	}
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/pipeline/runs/killme@2026-11-23")
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = json.Unmarshal(data, &run)
			if run.Status == "succeeded" || run.Status == "failed" {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if run.Status != "succeeded" {
		t.Fatalf("run after restart: %+v\n--- first process:\n%s\n--- second process:\n%s", run, first.out.String(), second.out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if hits["one"] != 1 || hits["three"] != 1 {
		t.Fatalf("steps not in flight at the kill ran again: %v", hits)
	}
	if hits["two"] != 2 {
		t.Fatalf("step two (in flight at the kill) ran %d times, want 2", hits["two"])
	}
	if run.Steps[1].Attempts != 2 {
		t.Fatalf("two's attempts = %d, want 2", run.Steps[1].Attempts)
	}
}

// Operator commands reach a local `pipeline serve` with auth on: they sign
// with the key the service keeps in its data directory.
func TestOperatorCommandsReachALocalServiceWithAuthOn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	port := freePort(t)
	startServe(t, []string{"PIPELINE_FILE=" + repoPipelines, "PIPELINE_DATA=" + data}, port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	out, stderr, err := runArgs(t, "enqueue", "extract", "--date", "2026-05-01", "--pipeline", "daily", "--url", base, "--data", data, "--file", repoPipelines, "--wait")
	if err != nil {
		t.Fatalf("enqueue over --url: %v\n%s\n%s", err, out, stderr)
	}
	out, _, err = runArgs(t, "status", "daily@2026-05-01", "--url", base, "--data", data, "--file", repoPipelines)
	if err != nil || !strings.Contains(out, "extract") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// Without the service's key (another data directory) the call is refused.
	_, _, err = runArgs(t, "status", "daily@2026-05-01", "--url", base, "--data", filepath.Join(dir, "other"), "--file", repoPipelines)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without the key: %v, want a 401", err)
	}
}
