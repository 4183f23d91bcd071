package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// part fetches a page's main part as the live script does, and whether the
// page is still live.
func (e *env) part(path string) (string, bool) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://dash.test"+path+"?part=main", nil)
	req.Header.Set("Authorization", "Bearer "+e.vwToken)
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
	return w.Body.String(), w.Header().Get("X-Live") == "1"
}

// A live page's main part changes when the run does, not as the clock ticks
// (so the page swaps nothing, and keeps focus and scroll, while nothing
// happens), and stops being live when the run ends.
func TestLivePartChangesOnlyWithTheRun(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	res, err := e.orch.Start(ctx, pipeline.StartRequest{Pipeline: "web", Date: "2026-11-30"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/ui/runs/" + res.Run.ID, "/ui/"} {
		first, live := e.part(path)
		if !live || strings.Contains(first, "<html") {
			t.Fatalf("%s: live=%v; want a live main part without the layout", path, live)
		}
		e.now = e.now.Add(7 * time.Second)
		if again, _ := e.part(path); again != first {
			t.Errorf("%s: the main part changed with the clock alone", path)
		}
	}
	if _, err := e.orch.Cancel(ctx, res.Run.ID); err != nil {
		t.Fatal(err)
	}
	body, live := e.part("/ui/runs/" + res.Run.ID)
	if live || !strings.Contains(body, `data-status="cancelled"`) {
		t.Errorf("after cancel: live=%v; want the cancelled run, no longer live", live)
	}
}

// The run page draws the run's own recorded graph, not the definition
// loaded now (a deploy may have changed it since the run started).
func TestRunPageFollowsTheRunsRecordedGraph(t *testing.T) {
	e := newEnv(t, 3)
	res, err := e.orch.Start(context.Background(), pipeline.StartRequest{Pipeline: "web", Date: "2026-11-30"})
	if err != nil {
		t.Fatal(err)
	}
	// Redeploy: s02 now runs after s00 instead of s01.
	e.yaml = strings.Replace(pipelineYAML(10), `{name: s02, kind: http,`, `{name: s02, kind: http, after: [s00],`, 1)
	e.setup(e.led, e.q, e.q)
	_, body := e.do(request{path: "/ui/runs/" + res.Run.ID, token: e.vwToken})
	i := strings.Index(body, `id="step-s02"`)
	if i < 0 {
		t.Fatalf("no s02 section:\n%s", body)
	}
	section := body[i:]
	if j := strings.Index(section, "<dt>after</dt><dd>"); j < 0 || !strings.HasPrefix(section[j+len("<dt>after</dt><dd>"):], "s01<") {
		t.Errorf("s02's predecessors on the page are not the run's recorded ones (s01):\n%s", section[:min(len(section), 900)])
	}
}
