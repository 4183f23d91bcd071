package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
)

// clock is a settable clock for the service.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func call(t *testing.T, srv *httptest.Server, method, path, key string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Pipeline-Attempt-Key", key)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, b)
	}
	return resp.StatusCode, resp.Header, body
}

// The service answers the protocol the async http kind waits on: 202 with
// a Location, 202 while running, 200 with the result; a repeated start with
// the same attempt key gets the same export; bad input is refused saying why.
func TestServiceProtocol(t *testing.T) {
	c := &clock{now: time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(newService(c.Now))
	defer srv.Close()

	code, h, body := call(t, srv, "POST", "/exports?date=2026-03-14&seconds=60", "async@2026-03-14/export/g1/a1")
	if code != http.StatusAccepted || h.Get("Location") != "/exports/1" || body["status_url"] != "/exports/1" {
		t.Fatalf("start: %d %v %v", code, h, body)
	}
	if code, h, _ := call(t, srv, "POST", "/exports?date=2026-03-14&seconds=60", "async@2026-03-14/export/g1/a1"); code != 202 || h.Get("Location") != "/exports/1" {
		t.Fatalf("repeated start: %d %v, want the same export", code, h)
	}
	if code, h, _ := call(t, srv, "POST", "/exports?date=2026-03-14&seconds=60", "async@2026-03-14/export/g2/a1"); code != 202 || h.Get("Location") != "/exports/2" {
		t.Fatalf("another attempt's start: %d %v, want a new export", code, h)
	}
	c.add(59 * time.Second)
	if code, _, body := call(t, srv, "GET", "/exports/1", ""); code != http.StatusAccepted || body["seconds_left"] != float64(1) {
		t.Fatalf("check while running: %d %v", code, body)
	}
	c.add(time.Second)
	if code, _, body := call(t, srv, "GET", "/exports/1", ""); code != http.StatusOK || body["state"] != "done" || body["date"] != "2026-03-14" {
		t.Fatalf("check when done: %d %v", code, body)
	}
	for _, bad := range []struct{ method, path, want string }{
		{"POST", "/exports?date=14/03/2026", "is not YYYY-MM-DD"},
		{"POST", "/exports?date=2026-03-14&seconds=-1", "whole number"},
		{"GET", "/exports/99", `no export "99"`},
		{"DELETE", "/exports/1", "use POST /exports"},
		{"GET", "/nothing", "no such endpoint"},
	} {
		code, _, body := call(t, srv, bad.method, bad.path, "")
		if code < 400 || code > 499 || !strings.Contains(body["error"].(string), bad.want) {
			t.Errorf("%s %s: %d %v, want a 4xx saying %q", bad.method, bad.path, code, body, bad.want)
		}
	}
}

// The example pipeline runs end to end with `pipeline run` on the embedded
// backends against this service (on its real clock, a 1-second export
// checked every 2 seconds): export waits, then the run succeeds.
func TestAsyncExamplePipelineRunsEndToEnd(t *testing.T) {
	svc := newService(time.Now)
	srv := httptest.NewServer(svc)
	defer srv.Close()
	var out bytes.Buffer
	err := app.Main(context.Background(), []string{"run", "-f", "../../pipelines/examples/async.yaml", "--data", t.TempDir(),
		"--date", "2026-03-14", "-p", "service_url=" + srv.URL, "-p", "work_seconds=1", "--timeout", "2m"},
		app.WithExampleSteps(), app.WithOutput(&out, &out))
	if code := app.ExitCode(err); code != 0 {
		t.Fatalf("exit %d (%v)\n%s", code, err, out.String())
	}
	for _, want := range []string{
		"export               waiting",
		srv.URL + "/exports/1",
		"run async@2026-03-14: succeeded",
		`"state":"done"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.exports) != 1 {
		t.Fatalf("%d exports started, want 1", len(svc.exports))
	}
}
