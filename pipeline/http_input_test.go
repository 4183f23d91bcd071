package pipeline_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
)

// newOperatorAPI serves the API with an invoker and an operator identity.
func newOperatorAPI(t *testing.T) (a *apiHarness, invoker, operator string) {
	t.Helper()
	h := newHarness(t, chainYAML)
	iss, _ := auth.NewLocalIssuer("https://issuer.test", "tasks@proj.iam.gserviceaccount.com")
	opIss, _ := auth.NewLocalIssuer("https://issuer.test", "alice@example.com")
	v, err := auth.NewVerifier(ctx, auth.Config{Audience: "https://svc.test", Issuer: "https://issuer.test",
		Allowed: []string{"tasks@proj.iam.gserviceaccount.com"}, KeySet: multiKeySet{iss, opIss}})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := v.WithAllowed("ALLOWED_OPERATORS", []string{"alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	handler, err := pipeline.NewHandler(pipeline.ServerConfig{Orchestrator: h.orch, Auth: v, Operators: ops})
	if err != nil {
		t.Fatal(err)
	}
	a = &apiHarness{harness: h, srv: httptest.NewServer(handler)}
	t.Cleanup(a.srv.Close)
	if invoker, err = iss.Token(ctx, "https://svc.test"); err != nil {
		t.Fatal(err)
	}
	if operator, err = opIss.Token(ctx, "https://svc.test"); err != nil {
		t.Fatal(err)
	}
	return a, invoker, operator
}

// TestAPIRefusesDuplicateKeys: on every route that takes a JSON body, a key
// given twice in one object (at any depth) is a 400 that changes nothing;
// without the duplicate the same body is accepted.
func TestAPIRefusesDuplicateKeys(t *testing.T) {
	a, invoker, operator := newOperatorAPI(t)
	if code, out := a.do("POST", "/pipeline/start", invoker, []byte(`{"pipeline":"chain","date":"2026-11-23"}`), nil); code != 201 {
		t.Fatalf("start = %d %v", code, out)
	}
	a.drain(50)
	step := `"run_id":"chain@2026-11-23","step":"a","generation":1,"date":"2026-11-23"`
	for _, c := range []struct {
		name, path, token, body, dup string
	}{
		{"start", "/pipeline/start", invoker, `{"pipeline":"chain","date":"2026-11-24","pipeline":"chain"}`, `"pipeline"`},
		{"start, nested", "/pipeline/start", invoker, `{"pipeline":"chain","date":"2026-11-25","params":{"rows":"1","rows":"2"}}`, `"params.rows"`},
		{"step", "/pipeline/steps/a", invoker, `{` + step + `,"generation":1}`, `"generation"`},
		{"enqueue", "/pipeline/runs/chain@2026-11-23/steps/b/enqueue", operator, `{"force":true,"force":false}`, `"force"`},
		{"enqueue, nested", "/pipeline/runs/chain@2026-11-26/steps/a/enqueue", operator, `{"params":{"region":"eu","region":"us"}}`, `"params.region"`},
		{"backfill", "/pipeline/backfill", operator, `{"pipeline":"chain","from":"2026-10-01","to":"2026-10-02","to":"2026-10-30"}`, `"to"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := a.ledger.ListRuns(ctx, pipeline.RunFilter{Since: time.Time{}, Limit: 1000})
			code, out := a.do("POST", c.path, c.token, []byte(c.body), nil)
			msg, _ := out["error"].(string)
			if code != 400 || !strings.Contains(msg, c.dup+" appears twice") {
				t.Fatalf("%s: %d %v, want 400 naming %s", c.body, code, out, c.dup)
			}
			after, _ := a.ledger.ListRuns(ctx, pipeline.RunFilter{Since: time.Time{}, Limit: 1000})
			if len(after) != len(before) {
				t.Fatalf("a refused body created runs: %d -> %d", len(before), len(after))
			}
			for i := range before {
				if before[i].Version != after[i].Version {
					t.Fatalf("a refused body changed run %s", before[i].ID)
				}
			}
			if len(a.queue.take()) != 0 {
				t.Fatal("a refused body queued a task")
			}
		})
	}
	// Reconcile, resume and cancel take no fields, so any key in their body is
	// already refused as unknown; a duplicate of it is refused too.
	for _, p := range []string{"/pipeline/reconcile", "/pipeline/runs/chain@2026-11-23/resume", "/pipeline/runs/chain@2026-11-23/cancel"} {
		tok := operator
		if p == "/pipeline/reconcile" {
			tok = invoker
		}
		if code, _ := a.do("POST", p, tok, []byte(`{"x":1,"x":1}`), nil); code != 400 {
			t.Errorf("%s with a duplicate key = %d, want 400", p, code)
		}
	}
	// The same bodies without their duplicates are fine.
	for _, c := range []struct{ path, token, body string }{
		{"/pipeline/start", invoker, `{"pipeline":"chain","date":"2026-11-24"}`},
		{"/pipeline/start", invoker, `{"pipeline":"chain","date":"2026-11-25","params":{"rows":"1","Rows":"2"}}`},
		{"/pipeline/runs/chain@2026-11-23/steps/b/enqueue", operator, `{"force":true,"only":true}`},
		{"/pipeline/backfill", operator, `{"pipeline":"chain","from":"2026-10-01","to":"2026-10-02"}`},
		{"/pipeline/steps/a", invoker, `{` + step + `}`},
	} {
		if code, out := a.do("POST", c.path, c.token, []byte(c.body), nil); code >= 300 {
			t.Errorf("%s %s = %d %v, want success", c.path, c.body, code, out)
		}
	}
}

func TestAPISinceOutOfRangeIs400(t *testing.T) {
	a, invoker, operator := newOperatorAPI(t)
	for _, c := range []struct {
		path, token, want string
	}{
		{"/pipeline/stats?since=800000d", operator, "more than 36500 days"},              // was 500: a time before year 1
		{"/pipeline/stats?since=9223372036854775807d", operator, "more than 36500 days"}, // wrapped to tomorrow
		{"/pipeline/stats?since=99999999999999999999d", operator, "more than 36500 days"},
		{"/pipeline/stats?since=876000h1m", operator, "more than 36500 days"},
		{"/pipeline/stats?since=soon", operator, "is not a span back"},
		{"/pipeline/runs?since=800000d", invoker, "more than 36500 days"},
		{"/pipeline/runs?since=-3d", invoker, "is not a span back"},
	} {
		code, out := a.do("GET", c.path, c.token, nil, nil)
		msg, _ := out["error"].(string)
		if code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("%s = %d %v, want 400 with %q", c.path, code, out, c.want)
		}
	}
	for _, p := range []string{"/pipeline/stats?since=36500d", "/pipeline/stats?since=0d", "/pipeline/stats?since=2026-01-01", "/pipeline/runs?since=36h"} {
		tok := operator
		if strings.HasPrefix(p, "/pipeline/runs") {
			tok = invoker
		}
		if code, out := a.do("GET", p, tok, nil, nil); code != 200 {
			t.Errorf("%s = %d %v, want 200", p, code, out)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"7d", now.AddDate(0, 0, -7)},
		{"36500d", now.AddDate(0, 0, -36500)},
		{"36h", now.Add(-36 * time.Hour)},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-11-01T05:00:00+01:00", time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)},
	} {
		got, err := pipeline.ParseSince(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseSince(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"36501d", "800000d", "9223372036854775807d", "1000000h", "", "d", "-1d", "7 days"} {
		if got, err := pipeline.ParseSince(in, now); err == nil || pipeline.ErrorStatus(err) != 400 {
			t.Errorf("ParseSince(%q) = %s, %v; want a 400 error", in, got, err)
		}
	}
}
