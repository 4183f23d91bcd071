package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ui"
)

// page fetches a dashboard page as email (a token of the emulator's issuer).
func (g *gcpStack) page(method, path, email string, hdr map[string]string) (int, string) {
	g.t.Helper()
	req, _ := http.NewRequest(method, g.base+path, strings.NewReader("{}"))
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The dashboard on the gcp backend: the grid and run page read Firestore
// through the ledger, the queue page points at the Cloud Tasks console, and
// the roles are the allowlists over the same verifier as the API.
func TestDashboardOnTheGCPBackend(t *testing.T) {
	g := startGCPStack(t)
	paris, _ := time.LoadLocation("Europe/Paris")
	date := time.Now().In(paris).AddDate(0, 0, -1).Format(time.DateOnly)
	id := "daily@" + date
	if code, out := g.call("POST", "/pipeline/start", schedulerSA, map[string]string{"pipeline": "daily", "date": date}, nil); code != 201 {
		t.Fatalf("start = %d %v", code, out)
	}
	if run := g.waitRun(id); run["status"] != "succeeded" {
		t.Fatalf("run = %v", run)
	}

	code, body := g.page("GET", "/ui/", operatorSA, nil)
	if code != 200 || strings.Count(body, `data-date="`+date+`" data-status="succeeded"`) != 3 || !strings.Contains(body, "alice@example.com · operator") {
		t.Fatalf("grid: %d\n%s", code, body)
	}
	code, body = g.page("GET", "/ui/runs/"+id, operatorSA, nil)
	if code != 200 || !strings.Contains(body, "console.cloud.google.com/logs/query") || !strings.Contains(body, "project=demo-pipeline") || !strings.Contains(body, "Re-run report") {
		t.Fatalf("run page: %d\n%s", code, body)
	}
	// Every attempt's history comes back from Firestore: one bar per step
	// on the timeline, one row in each step's attempt list.
	if n := strings.Count(body, ` data-n="1" data-g="1"`); n != 3 || !strings.Contains(body, `id="att-report"`) {
		t.Fatalf("run page timeline: %d attempt bars, want 3 (one per step)\n%s", n, body)
	}
	code, body = g.page("GET", "/ui/stats", operatorSA, nil)
	if code != 200 || !strings.Contains(body, "whole run") || !strings.Contains(body, ">report<") {
		t.Fatalf("stats page: %d\n%s", code, body)
	}
	code, body = g.page("GET", "/ui/queue", operatorSA, nil)
	if code != 200 || !strings.Contains(body, "not available on the gcp backend") || !strings.Contains(body, "cloudtasks/queue/local/pipeline/tasks?project=demo-pipeline") {
		t.Fatalf("queue page: %d\n%s", code, body)
	}
	// ALLOWED_VIEWERS is empty: the viewer role is closed; invokers are not viewers.
	if code, body := g.page("GET", "/ui/", "someone@example.com", nil); code != 403 || !strings.Contains(body, "ALLOWED_VIEWERS") {
		t.Fatalf("unlisted caller: %d\n%s", code, body)
	}
	if code, _ := g.page("GET", "/ui/", tasksSA, nil); code != 403 {
		t.Fatalf("the Cloud Tasks invoker reads the dashboard: %d", code)
	}
	// An operator's action from the page: the domain's answer comes back.
	same := map[string]string{"Origin": g.base, ui.CSRFHeader: "1"}
	if code, body := g.page("POST", "/ui/api/runs/"+id+"/steps/report/rerun", operatorSA, same); code != 409 || !strings.Contains(body, "already succeeded") {
		t.Fatalf("re-run without force: %d %s", code, body)
	}
	if code, body := g.page("POST", "/ui/api/runs/"+id+"/steps/report/rerun", operatorSA, map[string]string{"Origin": "https://evil.test", ui.CSRFHeader: "1"}); code != 403 {
		t.Fatalf("cross-site re-run: %d %s", code, body)
	}
}
