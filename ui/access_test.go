package ui_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/ui"
)

func TestPagesByRole(t *testing.T) {
	e := newEnv(t, 3)
	seedFinished(t, e.led, e.now, 3, 10)
	run := "/ui/runs/web@" + e.now.Format("2006-01-02")
	for _, c := range []struct {
		name, token string
		code        int
		want, not   []string
	}{
		{"no token", "", http.StatusUnauthorized, []string{"pipeline ui --url"}, []string{"s00"}},
		{"viewer", e.vwToken, http.StatusOK, []string{viewerMail + " · viewer", "s09"}, []string{`class="act"`, "<dialog", "Resume", "Re-run"}},
		{"operator", e.opToken, http.StatusOK, []string{operatorMail + " · operator", `class="act"`, "Re-run s00", "<dialog"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.do(request{path: run, token: c.token})
			if code != c.code {
				t.Fatalf("GET %s: %d, want %d\n%s", run, code, c.code, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(body, n) {
					t.Errorf("page has %q", n)
				}
			}
		})
	}
	// A verified caller on neither list is forbidden, and told what to ask.
	code, body := e.do(request{path: "/ui/", token: strings.Repeat("x", 20)})
	if code != http.StatusUnauthorized {
		t.Errorf("garbage token: %d", code)
	}
	_ = body
}

func TestAuthOffSaysSo(t *testing.T) {
	e := newEnv(t, 3, authOff)
	code, body := e.do(request{path: "/ui/"})
	if code != http.StatusOK || !strings.Contains(body, "Authentication is off") || !strings.Contains(body, `data-action="/ui/api/start"`) {
		t.Fatalf("%d: want the page with the auth-off banner and the actions\n%s", code, body)
	}
}

// Actions: only operators, only same-origin with the CSRF header, bad input
// gets a clear 4xx and changes nothing.
func TestActionsAreGuarded(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	res, err := e.orch.Start(ctx, pipeline.StartRequest{Pipeline: "web", Date: "2026-11-29"})
	if err != nil {
		t.Fatal(err)
	}
	cancel := "/ui/api/runs/" + res.Run.ID + "/cancel"
	same := map[string]string{"Origin": "http://dash.test", ui.CSRFHeader: "1"}
	for _, c := range []struct {
		name   string
		req    request
		code   int
		reason string
	}{
		{"no CSRF header", request{method: "POST", path: cancel, token: e.opToken, header: map[string]string{"Origin": "http://dash.test"}}, 403, "missing header X-Pipeline-CSRF"},
		{"foreign origin", request{method: "POST", path: cancel, token: e.opToken, header: map[string]string{"Origin": "https://evil.test", ui.CSRFHeader: "1"}}, 403, "cross-site request refused"},
		{"cross-site fetch", request{method: "POST", path: cancel, token: e.opToken, header: map[string]string{"Sec-Fetch-Site": "cross-site", ui.CSRFHeader: "1"}}, 403, "Sec-Fetch-Site is cross-site"},
		{"same-site other port", request{method: "POST", path: cancel, token: e.opToken, header: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://dash.test:8081", ui.CSRFHeader: "1"}}, 403, "cross-site request refused"},
		{"no token", request{method: "POST", path: cancel, header: same}, 401, "unauthorized"},
		{"viewer", request{method: "POST", path: cancel, token: e.vwToken, header: same}, 403, "only ALLOWED_OPERATORS"},
		{"malformed body", request{method: "POST", path: cancel, token: e.opToken, header: same, body: "{"}, 400, "malformed JSON"},
		{"unknown field", request{method: "POST", path: "/ui/api/start", token: e.opToken, header: same, body: `{"pipeline":"web","date":"2026-11-28","nope":1}`}, 400, "unknown field"},
		{"bad date", request{method: "POST", path: "/ui/api/start", token: e.opToken, header: same, body: `{"pipeline":"web","date":"28/11/2026"}`}, 400, "28/11/2026"},
		{"unknown pipeline", request{method: "POST", path: "/ui/api/backfill", token: e.opToken, header: same, body: `{"pipeline":"nope","from":"2026-11-01","to":"2026-11-02"}`}, 404, "nope"},
		{"unknown step", request{method: "POST", path: "/ui/api/runs/" + res.Run.ID + "/steps/zz/rerun", token: e.opToken, header: same, body: `{"force":true}`}, 404, "zz"},
		{"bad run id", request{method: "POST", path: "/ui/api/runs/nope/resume", token: e.opToken, header: same}, 400, "PIPELINE@KEY"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.do(c.req)
			if code != c.code || !strings.Contains(body, c.reason) || !strings.Contains(body, `"error"`) {
				t.Errorf("%d %s; want %d with %q", code, body, c.code, c.reason)
			}
		})
	}
	runs, err := e.led.ListRuns(ctx, pipeline.RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].Status != pipeline.RunRunning {
		t.Fatalf("refused actions changed the ledger: %+v %v", runs, err)
	}
	// The operator's own request from the page goes through.
	code, body := e.action(cancel, "", e.opToken)
	if code != http.StatusOK || !strings.Contains(body, "is cancelled") {
		t.Fatalf("operator cancel: %d %s", code, body)
	}
	code, body = e.action("/ui/api/start", `{"pipeline":"web","date":"2026-11-28","params":{"rows":"5"}}`, e.opToken)
	if code != http.StatusOK || !strings.Contains(body, "Started web@2026-11-28") {
		t.Fatalf("operator start: %d %s", code, body)
	}
	r, err := e.led.GetRun(ctx, "web@2026-11-28")
	if err != nil || r.Params["rows"] != "5" || r.Trigger != "ui" {
		t.Fatalf("started run %+v %v", r, err)
	}
}

func TestGuardLetsServersThrough(t *testing.T) {
	called := 0
	h := ui.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called++ }))
	for _, c := range []struct {
		method string
		header map[string]string
		pass   bool
	}{
		{"POST", nil, true}, // Cloud Tasks, Cloud Scheduler, the CLI: no browser headers
		{"POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://svc.test"}, true},
		{"POST", map[string]string{"Sec-Fetch-Site": "none"}, true}, // typed by the user
		{"POST", map[string]string{"Origin": "null"}, false},
		{"POST", map[string]string{"Origin": "http://evil.test"}, false},
		{"POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"GET", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.test"}, true}, // reads change nothing
	} {
		called = 0
		req := httptest.NewRequest(c.method, "http://svc.test/pipeline/runs/x/cancel", nil)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if (called == 1) != c.pass {
			t.Errorf("%s %v: passed=%v, want %v (status %d)", c.method, c.header, called == 1, c.pass, w.Code)
		}
		if !c.pass && (w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "cross-site request refused")) {
			t.Errorf("%v: %d %s", c.header, w.Code, w.Body.String())
		}
	}
}

func TestBadPageInputIsAClearError(t *testing.T) {
	e := newEnv(t, 3)
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/ui/?days=0", 400, "days &#34;0&#34; must be a whole number from 1 to 90"},
		{"/ui/?days=abc", 400, "days"},
		{"/ui/?pipeline=nope", 404, "no pipeline &#34;nope&#34;"},
		{"/ui/runs/web@2020-01-01", 404, "not found"},
		{"/ui/runs/bad", 400, "PIPELINE@KEY"},
		{"/ui/nowhere", 404, "no dashboard page"},
	} {
		// A browser gets the error page.
		code, body := e.do(request{path: c.path, token: e.vwToken, header: map[string]string{"Accept": "text/html,application/xhtml+xml"}})
		if code != c.code || !strings.Contains(body, c.want) || !strings.Contains(body, "<h1>") {
			t.Errorf("GET %s: %d, want %d with %q\n%s", c.path, code, c.code, c.want, body)
		}
		// A script (no HTML in Accept) gets the same error as JSON.
		code, body = e.do(request{path: c.path, token: e.vwToken})
		var msg struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(body), &msg); err != nil || code != c.code || msg.Status != c.code || !strings.Contains(msg.Error, html.UnescapeString(c.want)) {
			t.Errorf("GET %s without Accept: %d %s, want a JSON error %d with %q (%v)", c.path, code, body, c.code, html.UnescapeString(c.want), err)
		}
	}
}

func TestQueuePage(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		e := newEnv(t, 3)
		if _, err := e.orch.Start(context.Background(), pipeline.StartRequest{Pipeline: "web", Date: "2026-11-29"}); err != nil {
			t.Fatal(err)
		}
		e.now = time.Now() // the queue's clock: the task is due

		code, body := e.do(request{path: "/ui/queue", token: e.vwToken})
		if code != 200 || !strings.Contains(body, "Pending <span class=\"count\">1</span>") || !strings.Contains(body, "web@2026-11-29") {
			t.Fatalf("%d\n%s", code, body)
		}
	})
	t.Run("gcp", func(t *testing.T) {
		e := newEnv(t, 3, gcpBackend)
		code, body := e.do(request{path: "/ui/queue", token: e.vwToken})
		if code != 200 || !strings.Contains(body, "not available on the gcp backend") || !strings.Contains(body, "https://console.cloud.google.com/cloudtasks/queue/europe-west1/pipeline/tasks?project=demo") {
			t.Fatalf("%d\n%s", code, body)
		}
	})
}

func TestStatsPage(t *testing.T) {
	e := newEnv(t, 3)
	seedFinished(t, e.led, e.now, 10, 10)
	code, body := e.do(request{path: "/ui/stats", token: e.vwToken})
	if code != 200 || !strings.Contains(body, "<th scope=\"row\">s09</th>") || !strings.Contains(body, "100%") || !strings.Contains(body, "<svg") {
		t.Fatalf("%d\n%s", code, body)
	}
}
