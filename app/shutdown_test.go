package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// getRun reads a run through the API of a local serve with auth off.
func getRun(base, id string) (status string, steps []map[string]any) {
	resp, err := http.Get(base + "/pipeline/runs/" + id)
	if err != nil {
		return "", nil
	}
	defer resp.Body.Close()
	var run struct {
		Status string           `json:"status"`
		Steps  []map[string]any `json:"steps"`
	}
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &run)
	return run.Status, run.Steps
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s\n%s", what, logs())
}

// `pipeline serve` exits within 6 s of SIGTERM (Cloud Run kills it 10 s
// after) even with ten final notifications owed to a Discord that never
// answers and a step body in flight; that step is released, so the service
// started again retries it at once, and the attempt is not counted.
func TestServeExitsPromptlyOnSIGTERMAndReleasesTheStepInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	discord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // unreachable: never answers
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer discord.Close()
	var mu sync.Mutex
	slowHits := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			mu.Lock()
			slowHits++
			n := slowHits
			mu.Unlock()
			if n == 1 {
				select { // the first attempt runs until the service stops
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer target.Close()
	defer unblock() // first: the servers' Close waits for their handlers

	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	yaml := fmt.Sprintf(`
name: quick
time_zone: UTC
steps:
  - {name: one, kind: http, http: {url: "%[1]s/quick"}}
---
name: slow
time_zone: UTC
steps:
  - {name: long, kind: http, timeout: 10m, max_attempts: 1, http: {url: "%[1]s/slow"}}
`, target.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PIPELINE_FILE=" + file, "PIPELINE_DATA=" + filepath.Join(dir, "data"), "PIPELINE_AUTH=off",
		"DISCORD_WEBHOOK_URL=" + discord.URL + "/api/webhooks/1/token"}
	port := freePort(t)
	first := startServe(t, env, port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	post := func(body string) {
		resp, err := http.Post(base+"/pipeline/start", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("start %s: %s", body, resp.Status)
		}
	}
	post(`{"pipeline":"slow","date":"2026-11-23"}`)
	for i := range 10 {
		post(fmt.Sprintf(`{"pipeline":"quick","date":"2026-11-%02d"}`, i+1))
	}
	waitFor(t, "ten succeeded runs and the slow step running", func() bool {
		for i := range 10 {
			if st, _ := getRun(base, fmt.Sprintf("quick@2026-11-%02d", i+1)); st != "succeeded" {
				return false
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return slowHits == 1
	}, first.out.String)

	sent := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.cmd.Wait() }()
	select {
	case err := <-exited:
		if took := time.Since(sent); took > 6*time.Second {
			t.Fatalf("serve took %s to exit after SIGTERM, want <= 6s\n%s", took, first.out.String())
		}
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, first.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve still running 15 s after SIGTERM\n%s", first.out.String())
	}

	// Started again, the service retries the released step at once (its
	// lease would otherwise hold for 10 m 30 s), as attempt 1 of 1.
	second := startServe(t, env, port)
	waitFor(t, "the slow run to succeed after the restart", func() bool {
		st, _ := getRun(base, "slow@2026-11-23")
		return st == "succeeded"
	}, func() string { return first.out.String() + "\n--- second:\n" + second.out.String() })
	_, steps := getRun(base, "slow@2026-11-23")
	if a, _ := steps[0]["attempts"].(float64); a != 1 {
		t.Fatalf("slow step attempts = %v, want 1 (the interrupted attempt is not counted)", steps[0]["attempts"])
	}
	if !strings.Contains(first.out.String(), "interrupted by shutdown") {
		t.Fatalf("the interruption was not logged:\n%s", first.out.String())
	}
}
