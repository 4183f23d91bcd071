package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
)

type apiHarness struct {
	*harness
	srv   *httptest.Server
	token string
	other string // a valid token from a caller not on the allowlist
}

func newAPI(t *testing.T) *apiHarness {
	t.Helper()
	h := newHarness(t, chainYAML)
	iss, err := auth.NewLocalIssuer("https://issuer.test", "tasks@proj.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Audience: "https://svc.test", Issuer: "https://issuer.test",
		Allowed: []string{"tasks@proj.iam.gserviceaccount.com"}, KeySet: iss.KeySet()})
	if err != nil {
		t.Fatal(err)
	}
	handler, err := pipeline.NewHandler(pipeline.ServerConfig{Orchestrator: h.orch, Auth: v})
	if err != nil {
		t.Fatal(err)
	}
	a := &apiHarness{harness: h, srv: httptest.NewServer(handler)}
	t.Cleanup(a.srv.Close)
	if a.token, err = iss.Token(ctx, "https://svc.test"); err != nil {
		t.Fatal(err)
	}
	stranger, err := auth.NewLocalIssuer("https://issuer.test", "intruder@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Signed by a different key than the verifier knows: must be refused too.
	if a.other, err = stranger.Token(ctx, "https://svc.test"); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *apiHarness) do(method, path, token string, body []byte, hdr map[string]string) (int, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			a.t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
		}
	}
	return resp.StatusCode, out
}

func TestAPIStartWithSchedulerHeader(t *testing.T) {
	a := newAPI(t)
	hdr := map[string]string{"X-CloudScheduler-ScheduleTime": "2026-11-23T23:30:00Z", "X-CloudScheduler": "true"}
	code, out := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain"}`), hdr)
	if code != 201 || out["run_id"] != "chain@2026-11-24" || out["status"] != "running" || out["created"] != true {
		t.Fatalf("start = %d %v", code, out)
	}
	code, out = a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain"}`), hdr)
	if code != 200 || out["run_id"] != "chain@2026-11-24" || out["created"] != false {
		t.Fatalf("duplicate start = %d %v", code, out)
	}
	r := a.run("chain@2026-11-24")
	if r.Trigger != "scheduler" {
		t.Fatalf("trigger = %q", r.Trigger)
	}
}

func TestAPIStepAndRunHistory(t *testing.T) {
	a := newAPI(t)
	if code, out := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain","date":"2026-11-23"}`), nil); code != 201 {
		t.Fatalf("start = %d %v", code, out)
	}
	for _, task := range a.queue.take() {
		body, _ := json.Marshal(task.Payload)
		code, out := a.do("POST", task.Payload.Path(), a.token, body, map[string]string{"X-CloudTasks-TaskName": task.Name})
		if code != 200 || out["outcome"] != "succeeded" {
			t.Fatalf("step = %d %v", code, out)
		}
	}
	code, out := a.do("GET", "/pipeline/runs/chain@2026-11-23", a.token, nil, nil)
	if code != 200 || out["status"] != "running" {
		t.Fatalf("get run = %d %v", code, out)
	}
	stepsOut := out["steps"].([]any)
	first := stepsOut[0].(map[string]any)
	if len(stepsOut) != 3 || first["step"] != "a" || first["status"] != "succeeded" || first["attempts"] != float64(1) || first["started_at"] == nil || first["output"] == nil {
		t.Fatalf("steps = %v", stepsOut)
	}
	code, out = a.do("GET", "/pipeline/runs?pipeline=chain&status=running&since=7d", a.token, nil, nil)
	if code != 200 || len(out["runs"].([]any)) != 1 {
		t.Fatalf("list = %d %v", code, out)
	}
}

// Invariant 8: every route but /healthz demands a verified token from an
// allowed caller; 401 for missing/invalid, 403 for a caller not allowed.
func TestAPIAuthFailsClosed(t *testing.T) {
	a := newAPI(t)
	if code, _ := a.do("GET", "/healthz", "", nil, nil); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	routes := []struct{ method, path, body string }{
		{"POST", "/pipeline/start", `{"pipeline":"chain"}`},
		{"POST", "/pipeline/steps/a", `{"run_id":"chain@2026-11-23","step":"a","generation":1,"date":"2026-11-23"}`},
		{"GET", "/pipeline/runs", ""},
		{"GET", "/pipeline/runs/chain@2026-11-23", ""},
	}
	for _, r := range routes {
		for _, tok := range []string{"", "garbage", a.other} {
			code, out := a.do(r.method, r.path, tok, []byte(r.body), nil)
			if code != 401 || out["error"] == "" {
				t.Errorf("%s %s with token %.10q: %d %v, want 401 with a JSON error", r.method, r.path, tok, code, out)
			}
		}
	}
	runs, _ := a.ledger.ListRuns(ctx, pipeline.RunFilter{})
	if len(runs) != 0 {
		t.Fatal("an unauthenticated call changed the ledger")
	}
}

func TestAPIForbiddenCaller(t *testing.T) {
	h := newHarness(t, chainYAML)
	iss, _ := auth.NewLocalIssuer("https://issuer.test", "someone@example.com")
	v, err := auth.NewVerifier(ctx, auth.Config{Audience: "https://svc.test", Issuer: "https://issuer.test",
		Allowed: []string{"tasks@proj.iam.gserviceaccount.com"}, KeySet: iss.KeySet()})
	if err != nil {
		t.Fatal(err)
	}
	handler, _ := pipeline.NewHandler(pipeline.ServerConfig{Orchestrator: h.orch, Auth: v})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	tok, _ := iss.Token(ctx, "https://svc.test")
	req, _ := http.NewRequest("POST", srv.URL+"/pipeline/start", strings.NewReader(`{"pipeline":"chain"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 403 || !strings.Contains(out["error"].(string), "someone@example.com") {
		t.Fatalf("= %d %v, want 403 naming the caller", resp.StatusCode, out)
	}
}

// Invariant 9: bad input gets a 4xx JSON error and changes nothing.
func TestAPIBadInput(t *testing.T) {
	a := newAPI(t)
	if code, _ := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain","date":"2026-11-23"}`), nil); code != 201 {
		t.Fatal("start failed")
	}
	before := a.run("chain@2026-11-23")
	big := `{"pipeline":"chain","params":{"x":"` + strings.Repeat("a", pipeline.MaxBodyBytes) + `"}}`
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		code                     int
	}{
		{"malformed JSON", "POST", "/pipeline/start", `{"pipeline":`, nil, 400},
		{"unknown field", "POST", "/pipeline/start", `{"pipeline":"chain","dat":"2026-11-23"}`, nil, 400},
		{"bad date", "POST", "/pipeline/start", `{"pipeline":"chain","date":"2026-02-30"}`, nil, 400},
		{"bad schedule time", "POST", "/pipeline/start", `{"pipeline":"chain"}`, map[string]string{"X-CloudScheduler-ScheduleTime": "yesterday"}, 400},
		{"unknown pipeline", "POST", "/pipeline/start", `{"pipeline":"nope"}`, nil, 404},
		{"oversized body", "POST", "/pipeline/start", big, nil, 413},
		{"step: malformed JSON", "POST", "/pipeline/steps/a", `{`, nil, 400},
		{"step: empty body", "POST", "/pipeline/steps/a", ``, nil, 400},
		{"step: route and body disagree", "POST", "/pipeline/steps/b", `{"run_id":"chain@2026-11-23","step":"a","generation":1,"date":"2026-11-23"}`, nil, 400},
		{"step: unknown step", "POST", "/pipeline/steps/zzz", `{"run_id":"chain@2026-11-23","generation":1,"date":"2026-11-23"}`, nil, 404},
		{"step: unknown run", "POST", "/pipeline/steps/a", `{"run_id":"chain@2001-01-01","generation":1,"date":"2001-01-01"}`, nil, 404},
		{"step: bad date", "POST", "/pipeline/steps/a", `{"run_id":"chain@2026-11-23","generation":1,"date":"tomorrow"}`, nil, 400},
		{"unknown run", "GET", "/pipeline/runs/chain@1999-01-01", ``, nil, 404},
		{"malformed run id", "GET", "/pipeline/runs/nonsense", ``, nil, 400},
		{"bad list status", "GET", "/pipeline/runs?status=done", ``, nil, 400},
		{"bad since", "GET", "/pipeline/runs?since=last-week", ``, nil, 400},
		{"unknown route", "GET", "/pipeline/nothing", ``, nil, 404},
	}
	for _, c := range cases {
		code, out := a.do(c.method, c.path, a.token, []byte(c.body), c.hdr)
		msg, _ := out["error"].(string)
		if code != c.code || msg == "" {
			t.Errorf("%s: %d %v, want %d with a JSON error", c.name, code, out, c.code)
		}
	}
	after := a.run("chain@2026-11-23")
	if after.Version != before.Version {
		t.Fatal("bad input changed the run")
	}
	for i := range before.Steps {
		if before.Steps[i].Version != after.Steps[i].Version {
			t.Fatalf("bad input changed step %s", before.Steps[i].Step)
		}
	}
	if runs, _ := a.ledger.ListRuns(ctx, pipeline.RunFilter{Since: time.Time{}}); len(runs) != 1 {
		t.Fatalf("bad input created runs: %d", len(runs))
	}
	if a.bodies["a"].runs.Load() != 0 {
		t.Fatal("bad input ran a step")
	}
}

func TestAPIOperatorRoutesNeedAnOperator(t *testing.T) {
	h := newHarness(t, chainYAML)
	iss, _ := auth.NewLocalIssuer("https://issuer.test", "tasks@proj.iam.gserviceaccount.com")
	opIss, _ := auth.NewLocalIssuer("https://issuer.test", "alice@example.com")
	keys := multiKeySet{iss, opIss}
	v, err := auth.NewVerifier(ctx, auth.Config{Audience: "https://svc.test", Issuer: "https://issuer.test",
		Allowed: []string{"tasks@proj.iam.gserviceaccount.com"}, KeySet: keys})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := v.WithAllowed("ALLOWED_OPERATORS", []string{"alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	handler, _ := pipeline.NewHandler(pipeline.ServerConfig{Orchestrator: h.orch, Auth: v, Operators: ops})
	a := &apiHarness{harness: h, srv: httptest.NewServer(handler)}
	defer a.srv.Close()
	invoker, _ := iss.Token(ctx, "https://svc.test")
	operator, _ := opIss.Token(ctx, "https://svc.test")
	if code, out := a.do("POST", "/pipeline/start", invoker, []byte(`{"pipeline":"chain","date":"2026-11-23"}`), nil); code != 201 {
		t.Fatalf("start = %d %v", code, out)
	}
	a.drain(50)
	// The Cloud Tasks identity may not act as an operator...
	if code, out := a.do("POST", "/pipeline/runs/chain@2026-11-23/steps/b/enqueue", invoker, []byte(`{"force":true}`), nil); code != 403 {
		t.Fatalf("enqueue by the invoker = %d %v, want 403", code, out)
	}
	// ...an operator may; and both may read history.
	code, out := a.do("POST", "/pipeline/runs/chain@2026-11-23/steps/b/enqueue", operator, []byte(`{"force":true}`), nil)
	if code != 200 || out["generation"] != float64(2) || out["task_name"] == "" {
		t.Fatalf("enqueue by an operator = %d %v", code, out)
	}
	for _, tok := range []string{invoker, operator} {
		if code, _ := a.do("GET", "/pipeline/runs/chain@2026-11-23", tok, nil, nil); code != 200 {
			t.Fatalf("read history = %d", code)
		}
	}
	if code, out := a.do("GET", "/pipeline/stats?since=30d", operator, nil, nil); code != 200 || len(out["pipelines"].([]any)) != 1 {
		t.Fatalf("stats = %d %v", code, out)
	}
	// Enqueueing a root of a run that does not exist creates it, with params.
	code, out = a.do("POST", "/pipeline/runs/chain@2026-12-01/steps/a/enqueue", operator, []byte(`{"params":{"region":"eu"}}`), nil)
	if code != 200 || out["run_created"] != true {
		t.Fatalf("ad hoc enqueue = %d %v", code, out)
	}
	if r := a.run("chain@2026-12-01"); r.Params["region"] != "eu" || r.Trigger != "adhoc" {
		t.Fatalf("ad hoc run = %+v", r)
	}
	if code, out := a.do("POST", "/pipeline/reconcile", invoker, nil, nil); code != 200 || out["runs_checked"] == nil {
		t.Fatalf("reconcile = %d %v", code, out)
	}
	if code, _ := a.do("POST", "/pipeline/runs/chain@2026-11-23/cancel", operator, []byte(`{"x":1}`), nil); code != 400 {
		t.Fatalf("cancel with an unknown field = %d, want 400", code)
	}
	if code, out := a.do("POST", "/pipeline/backfill", operator, []byte(`{"pipeline":"chain","from":"2026-11-05","to":"2026-11-01"}`), nil); code != 400 {
		t.Fatalf("bad backfill = %d %v", code, out)
	}
}

// multiKeySet verifies with whichever local issuer signed the token.
type multiKeySet []*auth.LocalIssuer

func (m multiKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	var last error
	for _, l := range m {
		p, err := l.KeySet().VerifySignature(ctx, jwt)
		if err == nil {
			return p, nil
		}
		last = err
	}
	return nil, last
}

// An impossible date is reported as a day that does not exist, on every route
// that takes a date, and changes nothing.
func TestAPIImpossibleDatesSayTheyDoNotExist(t *testing.T) {
	a := newAPI(t)
	for _, c := range []struct{ path, body, want string }{
		{"/pipeline/start", `{"pipeline":"chain","date":"2026-02-29"}`, `date "2026-02-29" does not exist: February 2026 has 28 days`},
		{"/pipeline/start", `{"pipeline":"chain","date":"2026-13-01"}`, `date "2026-13-01" does not exist: there is no month 13`},
		{"/pipeline/steps/a", `{"run_id":"chain@2026-02-29","generation":1,"date":"2026-02-29"}`, `date "2026-02-29" does not exist`},
		{"/pipeline/start", `{"pipeline":"chain","date":"next week"}`, `date "next week" is not a date YYYY-MM-DD`},
	} {
		code, out := a.do("POST", c.path, a.token, []byte(c.body), nil)
		if msg, _ := out["error"].(string); code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("POST %s %s = %d %v, want 400 saying %q", c.path, c.body, code, out, c.want)
		}
	}
	if runs, _ := a.ledger.ListRuns(ctx, pipeline.RunFilter{}); len(runs) != 0 {
		t.Fatalf("impossible dates created %d run(s)", len(runs))
	}
}

// GET /pipeline/pipelines lists the loaded pipelines (a client defaults
// --pipeline to the only one); it needs a token like every route.
func TestAPIListsPipelines(t *testing.T) {
	a := newAPI(t)
	code, out := a.do("GET", "/pipeline/pipelines", a.token, nil, nil)
	list, _ := out["pipelines"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("= %d %v", code, out)
	}
	p := list[0].(map[string]any)
	if p["name"] != "chain" || len(p["steps"].([]any)) == 0 || p["time_zone"] == "" {
		t.Fatalf("pipeline = %v", p)
	}
	if code, _ := a.do("GET", "/pipeline/pipelines", "", nil, nil); code != 401 {
		t.Fatalf("without a token: %d, want 401", code)
	}
}
