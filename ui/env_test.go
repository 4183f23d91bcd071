package ui_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/local"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/ui"
)

func TestMain(m *testing.M) { fsemu.Main(m) }

const (
	testAudience = "https://pipeline.test"
	operatorMail = "op@example.com"
	viewerMail   = "viewer@example.com"
)

// pipelineYAML is a chain of n http steps (never delivered in these tests:
// the queue does not run).
func pipelineYAML(n int) string {
	var b strings.Builder
	b.WriteString("name: web\ntime_zone: UTC\nschedule: \"0 6 * * *\"\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: s%02d, kind: http, http: {url: \"http://127.0.0.1:9/never\"}}\n", i)
	}
	return b.String()
}

// env is the dashboard on the real embedded ledger and local queue, with
// real token verification: an operator and a viewer, each signed by an
// issuer of its own.
type env struct {
	t        testing.TB
	led      pipeline.Ledger
	orch     *pipeline.Orchestrator
	handler  http.Handler
	opToken  string
	vwToken  string
	now      time.Time
	authOff  bool
	gcpStyle bool
	// yaml is the pipeline file (default pipelineYAML(10)).
	yaml string
	q    *local.Queue
}

type envOption func(*env)

func authOff(e *env)    { e.authOff = true }
func gcpBackend(e *env) { e.gcpStyle = true }

func newEnv(t testing.TB, steps int, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	for _, o := range opts {
		o(e)
	}
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "pipeline.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	led, err := boltledger.New(db)
	if err != nil {
		t.Fatal(err)
	}
	q, err := local.New(db, local.Config{QueueName: "local", Logger: quiet(), Commit: led.Committer().Batch, BaseURL: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	e.led, e.q = led, q
	e.setup(led, q, q)
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// setup builds the orchestrator and the dashboard on led and q; lister is
// the queue page's source (nil: the gcp backend).
func (e *env) setup(led pipeline.Ledger, q pipeline.Queue, lister *local.Queue) {
	t := e.t
	if e.yaml == "" {
		e.yaml = pipelineYAML(10)
	}
	defs, err := pipeline.Parse("web.yaml", []byte(e.yaml), steps.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.orch, err = pipeline.New(pipeline.Config{Catalog: pipeline.NewCatalog(defs...), Ledger: led, Queue: q, Logger: quiet(), Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ui.Config{Orchestrator: e.orch, Backend: "local", Project: "demo", Logger: quiet(), Now: func() time.Time { return e.now }, AuthOff: e.authOff}
	if !e.authOff {
		cfg.Operators, e.opToken = verifier(t, operatorMail, "ALLOWED_OPERATORS")
		cfg.Viewers, e.vwToken = verifier(t, viewerMail, "ALLOWED_VIEWERS")
	}
	if e.gcpStyle || lister == nil {
		cfg.Backend = "gcp"
		cfg.TasksConsoleURL = "https://console.cloud.google.com/cloudtasks/queue/europe-west1/pipeline/tasks?project=demo"
	} else {
		cfg.Queue = queueLister{lister}
	}
	h, err := ui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = ui.Guard(h)
}

// verifier is a real token verifier that allows one email, and a token for
// that email from an issuer of its own.
func verifier(t testing.TB, email, list string) (pipeline.Authenticator, string) {
	t.Helper()
	iss, err := auth.NewLocalIssuer("https://issuer-"+strings.Split(email, "@")[0]+".test", email)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Audience: testAudience, Issuer: iss.Issuer(), Allowed: []string{email}, AllowListName: list, KeySet: iss.KeySet()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Token(context.Background(), testAudience)
	if err != nil {
		t.Fatal(err)
	}
	return v, tok
}

// queueLister adapts the local queue as `serve` does.
type queueLister struct{ q *local.Queue }

func (l queueLister) QueueTasks(ctx context.Context) (waiting, dead []ui.QueueTask, err error) {
	for _, w := range l.q.Waiting() {
		waiting = append(waiting, ui.QueueTask{Name: w.Task.Name, RunID: w.Task.Payload.RunID, Step: w.Task.Payload.Step, ETA: w.ETA, Created: w.CreatedAt, Attempts: w.Attempts})
	}
	return waiting, nil, nil
}

// request is one call of the dashboard.
type request struct {
	method, path, body string
	token              string
	header             map[string]string
}

func (e *env) do(r request) (int, string) {
	e.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	req := httptest.NewRequest(r.method, "http://dash.test"+r.path, strings.NewReader(r.body))
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// action is what the dashboard's script sends: same origin, CSRF header.
func (e *env) action(path, body, token string) (int, string) {
	return e.do(request{method: http.MethodPost, path: path, body: body, token: token,
		header: map[string]string{"Origin": "http://dash.test", "Sec-Fetch-Site": "same-origin", ui.CSRFHeader: "1", "Content-Type": "application/json"}})
}

// seedFinished writes a finished run per day for days days before e.now, as
// the orchestrator leaves them (steps and the run's summary).
func seedFinished(t testing.TB, led pipeline.Ledger, now time.Time, days, nsteps int) {
	t.Helper()
	ctx := context.Background()
	for d := range days {
		date := now.AddDate(0, 0, -d).Format(time.DateOnly)
		created := now.AddDate(0, 0, -d).Add(-time.Hour)
		r := pipeline.Run{ID: pipeline.RunID("web", date), Pipeline: "web", Key: date, Date: date, Status: pipeline.RunRunning,
			Trigger: "scheduler", CreatedAt: created, StartedAt: created, UpdatedAt: created}
		var srs []pipeline.StepRun
		for i := range nsteps {
			srs = append(srs, pipeline.StepRun{RunID: r.ID, Step: fmt.Sprintf("s%02d", i), Status: pipeline.StepSucceeded, Generation: 1,
				Attempts: 1, MaxAttempts: 3, StartedAt: created.Add(time.Duration(i) * time.Second), FinishedAt: created.Add(time.Duration(i+1) * time.Second)})
		}
		stored, _, err := led.CreateRun(ctx, r, srs)
		if err != nil {
			t.Fatal(err)
		}
		stored.Status, stored.FinishedAt = pipeline.RunSucceeded, created.Add(time.Duration(nsteps)*time.Second)
		stored.Summary = pipeline.Summarize(srs)
		if _, err := led.UpdateRun(ctx, stored); err != nil {
			t.Fatal(err)
		}
	}
}
