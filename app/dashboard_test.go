package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/ui"
)

const viewerEmail = "viewer@example.com"

// workServer is what the test pipeline's http steps call: /DATE/STEP. On
// the "fail" date, left fails permanently the first time; on the "ok" date,
// right fails transiently (503) the first time; on the "live" date, join
// blocks until released.
type workServer struct {
	*httptest.Server
	failDate, okDate, liveDate string
	leftCalls, rightCalls      atomic.Int32
	release                    chan struct{}
	releaseOnce                sync.Once
}

func newWorkServer(t *testing.T, failDate, okDate, liveDate string) *workServer {
	w := &workServer{failDate: failDate, okDate: okDate, liveDate: liveDate, release: make(chan struct{})}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		date, step, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch {
		case date == w.failDate && step == "left" && w.leftCalls.Add(1) == 1:
			http.Error(rw, "the sample file has no header row", http.StatusBadRequest)
			return
		case date == w.okDate && step == "right" && w.rightCalls.Add(1) == 1:
			http.Error(rw, "warehouse busy", http.StatusServiceUnavailable)
			return
		case date == w.liveDate && step == "join":
			select {
			case <-w.release:
			case <-r.Context().Done():
				return
			}
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, `{"date":%q,"step":%q,"rows":3}`, date, step)
	}))
	t.Cleanup(func() { w.unblock(); w.Close() })
	return w
}

func (w *workServer) unblock() { w.releaseOnce.Do(func() { close(w.release) }) }

// dashboardEnv is `pipeline serve` with auth on (the local backend, the
// real wiring) and two `pipeline ui` proxies: one with the local issuer's
// identity (an operator) and one with a viewer's.
type dashboardEnv struct {
	a                      *app
	operator, viewer       string // proxies' /ui/ URLs
	operatorBase, viewBase string
	dates                  map[string]string
	work                   *workServer
}

func newDashboardEnv(t *testing.T) *dashboardEnv {
	t.Helper()
	today := time.Now().UTC()
	day := func(n int) string { return today.AddDate(0, 0, -n).Format(time.DateOnly) }
	dates := map[string]string{"ok": day(3), "fail": day(2), "live": day(1), "none": day(4)}
	work := newWorkServer(t, dates["fail"], dates["ok"], dates["live"])
	dir := t.TempDir()
	file := filepath.Join(dir, "web.yaml")
	yaml := fmt.Sprintf(`
name: web
time_zone: UTC
schedule: "0 6 * * *"
steps:
  - {name: fetch, kind: http, max_attempts: 2, http: {url: "%[1]s/{{.Date}}/fetch"}}
  - {name: left, kind: http, after: [fetch], max_attempts: 2, http: {url: "%[1]s/{{.Date}}/left"}}
  - {name: right, kind: http, after: [fetch], max_attempts: 2, http: {url: "%[1]s/{{.Date}}/right"}}
  - {name: join, kind: http, after: [left, right], max_attempts: 2, timeout: 2m, http: {url: "%[1]s/{{.Date}}/join"}}
`, work.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{File: []string{file}, Backend: "local", Data: filepath.Join(dir, "data"), Auth: "on", LogLevel: "error",
		LeaseGrace: durationOf(30 * time.Second), AllowedViewers: []string{viewerEmail}, Project: "demo-project"}
	a, err := buildApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := a.listen("127.0.0.1:0")
	if err != nil {
		a.close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.serve(ctx, ln, nil) }()
	t.Cleanup(func() { work.unblock(); stop(); <-done; a.close() })

	e := &dashboardEnv{a: a, dates: dates, work: work}
	// The operator's proxy is `pipeline ui --url` itself.
	e.operator = startUICmd(t, cfg, a.baseURL)
	e.operatorBase = strings.TrimSuffix(e.operator, "/ui/")
	// The viewer's: the same proxy with a token of the local issuer's key
	// for another email (listed in ALLOWED_VIEWERS only).
	viewerIss, err := auth.LoadLocalIssuer(localKeyPath(cfg), localIssuer, viewerEmail)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(a.baseURL)
	vp, err := ui.NewProxy(ui.ProxyConfig{Target: target, Token: func(ctx context.Context) (string, error) { return viewerIss.Token(ctx, localAudience) }})
	if err != nil {
		t.Fatal(err)
	}
	vs := httptest.NewServer(vp)
	t.Cleanup(vs.Close)
	e.viewBase, e.viewer = vs.URL, vs.URL+"/ui/"
	return e
}

// startUICmd runs `pipeline ui --url base` until the test ends and returns
// the address it prints.
func startUICmd(t *testing.T, cfg *Config, base string) string {
	t.Helper()
	ready := make(chan string, 1)
	c := &uiCmd{URL: base, Listen: "127.0.0.1:0", ready: func(u string) { ready <- u }}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out strings.Builder
	go func() { done <- c.Run(ctx, cfg, &appEnv{stdout: &out, stderr: io.Discard}) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("pipeline ui: %v", err)
		}
	})
	select {
	case u := <-ready:
		if !strings.Contains(out.String(), "open "+u) || !strings.Contains(out.String(), localCaller) {
			t.Errorf("pipeline ui printed %q; want the address %s and the identity", out.String(), u)
		}
		return u
	case err := <-done:
		t.Fatalf("pipeline ui: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("pipeline ui did not start")
	}
	return ""
}

// waitRun polls the ledger until ok(run) holds (a hang guard, not a timing
// assertion).
func (e *dashboardEnv) waitRun(t *testing.T, id, what string, ok func(pipeline.Run) bool) pipeline.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.a.orch.Ledger().GetRun(context.Background(), id)
		if err == nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: never %s (last: %+v, %v)", id, what, r, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stepStatus(r pipeline.Run, step string) pipeline.StepStatus {
	for _, s := range r.Steps {
		if s.Step == step {
			return s.Status
		}
	}
	return ""
}

// seed starts the runs of three days: one succeeds, one fails at left (right
// still succeeds), one waits in join.
func (e *dashboardEnv) seed(t *testing.T) {
	t.Helper()
	for _, k := range []string{"ok", "fail", "live"} {
		if _, err := e.a.orch.Start(context.Background(), pipeline.StartRequest{Pipeline: "web", Date: e.dates[k], Trigger: "scheduler"}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitRun(t, "web@"+e.dates["ok"], "succeeded", func(r pipeline.Run) bool { return r.Status == pipeline.RunSucceeded })
	e.waitRun(t, "web@"+e.dates["fail"], "failed with right done", func(r pipeline.Run) bool {
		return r.Status == pipeline.RunFailed && stepStatus(r, "right").Terminal()
	})
	e.waitRun(t, "web@"+e.dates["live"], "running join", func(r pipeline.Run) bool { return stepStatus(r, "join") == pipeline.StepRunning })
}

func TestDashboardInABrowser(t *testing.T) {
	op := newTab(t)
	e := newDashboardEnv(t)
	e.seed(t)
	d := e.dates
	runURL := func(base, k string) string { return base + "runs/web@" + d[k] }

	t.Run("grid shows each step's state by day", func(t *testing.T) {
		op.run(t, "open the grid", chromedp.Navigate(e.operator+"?days=14"), chromedp.WaitVisible(chromedp.CSS("table.grid")))
		cells := evalJS[[]string](t, op, `Array.from(document.querySelectorAll('table.grid .cell')).map(c => c.dataset.date + '/' + c.dataset.step + '=' + c.dataset.status)`)
		want := []string{
			d["none"] + "/fetch=notrun", d["none"] + "/join=notrun",
			d["ok"] + "/fetch=succeeded", d["ok"] + "/left=succeeded", d["ok"] + "/right=succeeded", d["ok"] + "/join=succeeded",
			d["fail"] + "/fetch=succeeded", d["fail"] + "/left=failed", d["fail"] + "/right=succeeded", d["fail"] + "/join=notrun",
			d["live"] + "/fetch=succeeded", d["live"] + "/left=succeeded", d["live"] + "/right=succeeded", d["live"] + "/join=running",
		}
		for _, w := range want {
			if !slices.Contains(cells, w) {
				t.Errorf("grid has no cell %s; cells: %v", w, cells)
			}
		}
		if n := len(cells); n != 14*4 {
			t.Errorf("grid has %d cells, want 14 days x 4 steps", n)
		}
		heads := evalJS[[]string](t, op, `Array.from(document.querySelectorAll('table.grid a.head')).map(a => a.getAttribute('aria-label'))`)
		if len(heads) != 3 || !strings.Contains(strings.Join(heads, "|"), "web@"+d["fail"]+": failed") || !strings.Contains(heads[0], "trigger scheduler") {
			t.Errorf("column heads %q; want 3 runs with status and trigger", heads)
		}
		if meta := evalJS[string](t, op, `document.querySelector('.pipe .meta').textContent`); !strings.Contains(meta, "0 6 * * *") || !strings.Contains(meta, "UTC") || !strings.Contains(meta, "next") {
			t.Errorf("pipeline meta %q; want schedule, time zone and next fire time", meta)
		}
		// Hover/focus shows duration and attempts.
		if tip := evalJS[string](t, op, `(() => { document.querySelector('a.cell[data-date="`+d["fail"]+`"][data-step="left"]').focus(); return getComputedStyle(document.activeElement, '::after').content })()`); !strings.Contains(tip, "left on "+d["fail"]+": failed, attempts 1/2") {
			t.Errorf("focused cell's tip %q; want it shown with status and attempts", tip)
		}
		op.screenshot(t, "grid-desktop", 1280, 900)
		op.screenshot(t, "grid-phone", 375, 812)
		light := evalJS[string](t, op, `getComputedStyle(document.body).backgroundColor`)
		op.colorScheme(t, "dark")
		if dark := evalJS[string](t, op, `getComputedStyle(document.body).backgroundColor`); dark == light {
			t.Errorf("the page ignores a dark preference (background %s in both)", dark)
		}
		op.screenshot(t, "grid-dark", 1280, 900)
		op.colorScheme(t, "light")
		op.run(t, "phone width", chromedp.EmulateViewport(375, 812))
		if w := evalJS[int](t, op, `document.documentElement.scrollWidth`); w > 375 {
			t.Errorf("at 375 px the page is %d px wide; it must not scroll sideways (only the grid does)", w)
		}
		op.run(t, "desktop width", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("clicking a cell opens its run", func(t *testing.T) {
		op.click(t, "click the failed cell", `a.cell[data-date="`+d["fail"]+`"][data-step="left"]`)
		op.run(t, "the run's page", chromedp.WaitVisible(chromedp.CSS("#step-left")))
		loc := evalJS[string](t, op, `location.pathname + location.hash`)
		if loc != "/ui/runs/web@"+d["fail"]+"#step-left" {
			t.Errorf("location %q", loc)
		}
		text := evalJS[string](t, op, `document.querySelector('#step-left').textContent`)
		for _, w := range []string{"failed", "1/2", "the sample file has no header row", "logs"} {
			if !strings.Contains(text, w) {
				t.Errorf("step section lacks %q:\n%s", w, text)
			}
		}
		if n := evalJS[int](t, op, `document.querySelectorAll('svg.graph .node').length`); n != 4 {
			t.Errorf("graph has %d nodes, want 4", n)
		}
		if n := evalJS[int](t, op, `document.querySelectorAll('svg.graph .edge').length`); n != 4 {
			t.Errorf("graph has %d edges, want 4 (fan-out to left and right, fan-in to join)", n)
		}
	})

	t.Run("a viewer sees no actions and the API refuses them", func(t *testing.T) {
		v := newTab(t)
		v.run(t, "open the run as a viewer", chromedp.Navigate(runURL(e.viewer, "fail")), chromedp.WaitVisible(chromedp.CSS("#step-left")))
		if n := evalJS[int](t, v, `document.querySelectorAll('form.act, button').length`); n != 0 {
			t.Errorf("viewer sees %d action forms/buttons", n)
		}
		if who := evalJS[string](t, v, `document.querySelector('.who').textContent`); !strings.Contains(who, viewerEmail+" · viewer") {
			t.Errorf("header says %q", who)
		}
		// What the page would send, sent by hand: refused for a viewer.
		req, _ := http.NewRequest(http.MethodPost, e.viewBase+"/ui/api/runs/web@"+d["fail"]+"/resume", strings.NewReader("{}"))
		req.Header.Set("Origin", e.viewBase)
		req.Header.Set(ui.CSRFHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "ALLOWED_OPERATORS") {
			t.Errorf("viewer's resume: %d %s; want 403 naming ALLOWED_OPERATORS", resp.StatusCode, body)
		}
		v.screenshot(t, "run-viewer-phone", 375, 812)
		v.noConsoleErrors(t)
	})

	t.Run("a forged cross-site POST is refused", func(t *testing.T) {
		live := "web@" + d["live"]
		foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			target := e.operatorBase + r.URL.Query().Get("to")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" enctype="text/plain" action="%s"><input name='{"x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`, target)
		}))
		defer foreign.Close()
		f := newTab(t)
		for _, to := range []string{"/ui/api/runs/" + live + "/cancel", "/pipeline/runs/" + live + "/cancel"} {
			f.run(t, "forge "+to, chromedp.Navigate(foreign.URL+"/?to="+url.QueryEscape(to)))
			f.waitJS(t, "the refusal", `location.href.startsWith(`+jsString(e.operatorBase)+`) && document.body && document.body.textContent.includes("cross-site request refused")`)
		}
		r := e.waitRun(t, live, "read", func(pipeline.Run) bool { return true })
		if r.Status != pipeline.RunRunning || stepStatus(r, "join") != pipeline.StepRunning {
			t.Errorf("after forged cancels the run is %s (join %s); want it running", r.Status, stepStatus(r, "join"))
		}
	})

	t.Run("a running step turns to succeeded without a reload", func(t *testing.T) {
		op.run(t, "open the live run", chromedp.Navigate(runURL(e.operator, "live")), chromedp.WaitVisible(chromedp.CSS("#step-join")))
		if s := evalJS[string](t, op, `document.querySelector('[data-step-status="join"]').dataset.status`); s != "running" {
			t.Fatalf("join shows %q before release; want running", s)
		}
		op.screenshot(t, "run-live-desktop", 1280, 900)
		op.run(t, "mark the page", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = "yes"`))
		// An operator has ticked a box of join's re-run form when join ends:
		// the update waits, so that the tick is not lost, and is shown once
		// the form has no change left unsent (here: the box unticked).
		const force = `form[data-action$="/steps/join/rerun"] input[name="force"]`
		tick := `(() => { const b = document.querySelector(` + jsString(force) + `); b.click(); return b.checked })()`
		if !evalJS[bool](t, op, tick) {
			t.Fatal("could not tick join's force box")
		}
		e.work.unblock()
		op.waitJS(t, "the update held while the form has a change", `document.getElementById("main").dataset.held === "1"`)
		if got := evalJS[string](t, op, `document.querySelector('[data-step-status="join"]').dataset.status + " " + document.querySelector(`+jsString(force)+`).checked`); got != "running true" {
			t.Errorf("with an update held, join shows %q; want the page as it was (running) with the box still ticked", got)
		}
		if note := evalJS[string](t, op, `getComputedStyle(document.getElementById("main"), '::before').content`); !strings.Contains(note, "held") {
			t.Errorf("the page says %s; want it to say an update is held", note)
		}
		if evalJS[bool](t, op, tick) {
			t.Fatal("could not untick join's force box")
		}
		op.waitJS(t, "join succeeded on screen", `document.querySelector('[data-step-status="join"]').dataset.status === "succeeded" && document.getElementById("run-status").dataset.status === "succeeded"`)
		if held := evalJS[bool](t, op, `document.getElementById("main").hasAttribute("data-held")`); held {
			t.Error("the update was shown but main still says one is held")
		}
		if v := evalJS[string](t, op, `String(window.__sameDocument)`); v != "yes" {
			t.Error("the page was reloaded; want an in-place update")
		}
	})

	t.Run("an operator resumes a failed run from the page", func(t *testing.T) {
		op.run(t, "open the failed run", chromedp.Navigate(runURL(e.operator, "fail")), chromedp.WaitVisible(chromedp.CSS("#act-resume")))
		op.click(t, "ask to resume", "#act-resume")
		op.waitJS(t, "the confirmation", `document.getElementById("confirm").open && document.getElementById("confirm-text").textContent.includes("Resume web@`+d["fail"]+`")`)
		op.run(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
		op.waitJS(t, "the result", `document.getElementById("result").textContent.includes("Resumed: enqueued left")`)
		op.waitJS(t, "the run succeeded on screen", `document.getElementById("run-status").dataset.status === "succeeded"`)
		op.screenshot(t, "run-desktop", 1280, 900)
		op.screenshot(t, "run-phone", 375, 812)
		r := e.waitRun(t, "web@"+d["fail"], "read", func(pipeline.Run) bool { return true })
		if r.Status != pipeline.RunSucceeded {
			t.Errorf("ledger: run %s", r.Status)
		}
		// left failed (generation 1), then the resume ran it again: both
		// attempts are on the timeline once the page shows the success.
		op.waitJS(t, "left's second attempt on the timeline", `document.querySelectorAll('[data-timeline-step="left"] rect[data-n]').length === 2`)
		if got := timelineAttempts(t, op, "left"); !slices.Equal(got, []string{"1/1=failed", "1/2=succeeded"}) {
			t.Errorf("left's timeline %v; want the failed attempt of generation 1, then the resumed one", got)
		}
	})

	t.Run("the timeline shows every attempt of a retried step", func(t *testing.T) {
		op.run(t, "open the run whose right step was retried", chromedp.Navigate(runURL(e.operator, "ok")), chromedp.WaitVisible(chromedp.CSS("#timeline")))
		if got := timelineAttempts(t, op, "right"); !slices.Equal(got, []string{"1/1=retrying", "2/1=succeeded"}) {
			t.Errorf("right's timeline %v; want attempt 1 retrying, then attempt 2 succeeded", got)
		}
		if got := timelineAttempts(t, op, "fetch"); !slices.Equal(got, []string{"1/1=succeeded"}) {
			t.Errorf("fetch's timeline %v; want one attempt", got)
		}
		// The failed attempt says why, on hover and in the step's list.
		if tip := evalJS[string](t, op, `document.querySelector('[data-timeline-step="right"] rect[data-n] title').textContent`); !strings.Contains(tip, "attempt 1 retrying") || !strings.Contains(tip, "http: POST") {
			t.Errorf("first attempt's title %q; want its number, status and the start of its error", tip)
		}
		if e := evalJS[string](t, op, `document.querySelector('#att-right tr[data-attempt="1"] .aerr').textContent`); !strings.Contains(e, "503") || !strings.Contains(e, "warehouse busy") {
			t.Errorf("first attempt's error in the list %q; want the 503 and its body", e)
		}
		rows := evalJS[[]string](t, op, `Array.from(document.querySelectorAll('#att-right tbody tr')).map(tr => tr.dataset.attempt + ':' + tr.querySelector('.st').textContent.trim())`)
		if !slices.Equal(rows, []string{"1:↻ retrying", "2:✓ succeeded"}) {
			t.Errorf("right's attempt list %q", rows)
		}
		// Bars in time order, apart from each other.
		xs := evalJS[[]float64](t, op, `Array.from(document.querySelectorAll('[data-timeline-step="right"] rect[data-n]')).map(r => [+r.getAttribute('x'), +r.getAttribute('width')]).flat()`)
		if len(xs) != 4 || xs[0]+xs[1] > xs[2] {
			t.Errorf("right's bars (x, width) %v; want the retry after the first attempt", xs)
		}
		op.screenshot(t, "run-retried-desktop", 1280, 900)
		op.run(t, "phone width", chromedp.EmulateViewport(375, 812))
		if w := evalJS[int](t, op, `document.documentElement.scrollWidth`); w > 375 {
			wide := evalJS[[]string](t, op, `Array.from(document.querySelectorAll('main *')).filter(e => !e.closest('svg') && e.getBoundingClientRect().right > 376).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`)
			t.Errorf("at 375 px the run page is %d px wide; it must not scroll sideways (%v)", w, wide)
		}
		op.run(t, "desktop width", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("an operator pauses and resumes the schedule from the grid", func(t *testing.T) {
		const pauseForm = `form[data-action="/ui/api/pipelines/web/pause"]`
		op.run(t, "open the grid", chromedp.Navigate(e.operator), chromedp.WaitVisible(chromedp.CSS(pauseForm)))
		op.run(t, "give a reason", chromedp.SendKeys(chromedp.CSS(pauseForm+` input[name="reason"]`), "warehouse migration"))
		op.click(t, "ask to pause", pauseForm+" button")
		op.waitJS(t, "the confirmation", `document.getElementById("confirm").open && document.getElementById("confirm-text").textContent.includes("Pause web's schedule?")`)
		op.run(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
		op.waitJS(t, "the result", `document.getElementById("result").textContent.includes("Paused web")`)
		// The sent form is reset, so its typed reason holds no update: the
		// page shows the pause without a reload.
		op.waitJS(t, "the grid updated to the paused schedule", `document.querySelector('form[data-action="/ui/api/pipelines/web/unpause"]') !== null && !document.getElementById("main").hasAttribute("data-held")`)
		st, err := e.a.orch.PauseState(context.Background(), "web")
		if err != nil || !st.Paused || st.Reason != "warehouse migration" {
			t.Fatalf("ledger after the pause button: %+v %v", st, err)
		}
		op.run(t, "reload", chromedp.Navigate(e.operator), chromedp.WaitVisible(chromedp.CSS(`form[data-action="/ui/api/pipelines/web/unpause"]`)))
		if text := evalJS[string](t, op, `document.querySelector("strong.paused").parentElement.textContent`); !strings.Contains(text, "warehouse migration") {
			t.Errorf("grid does not say why it is paused: %q", text)
		}
		op.click(t, "ask to resume", `form[data-action="/ui/api/pipelines/web/unpause"] button`)
		op.waitJS(t, "the confirmation", `document.getElementById("confirm").open && document.getElementById("confirm-text").textContent.includes("Resume web's schedule?")`)
		op.run(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
		op.waitJS(t, "the result", `document.getElementById("result").textContent.includes("Resumed web")`)
		if st, _ := e.a.orch.PauseState(context.Background(), "web"); st.Paused {
			t.Fatal("still paused after the resume button")
		}
	})

	t.Run("stats and queue pages", func(t *testing.T) {
		op.run(t, "open stats", chromedp.Navigate(e.operator+"stats"), chromedp.WaitVisible(chromedp.CSS("table.stats")))
		rows := evalJS[[]string](t, op, `Array.from(document.querySelectorAll('table.stats tbody th')).map(th => th.textContent)`)
		if !slices.Equal(rows, []string{"whole run", "fetch", "left", "right", "join"}) {
			t.Errorf("stats rows %v", rows)
		}
		op.screenshot(t, "stats-desktop", 1280, 900)
		op.run(t, "open queue", chromedp.Navigate(e.operator+"queue"), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if text := evalJS[string](t, op, `document.querySelector('main').textContent`); !strings.Contains(text, "Pending") || !strings.Contains(text, "Dead letters") {
			t.Errorf("queue page: %s", text)
		}
		op.screenshot(t, "queue-desktop", 1280, 900)
	})

	op.noConsoleErrors(t)
}

// timelineAttempts lists the attempts drawn on the run page's timeline for
// step: "N/generation=status".
func timelineAttempts(t *testing.T, tb *tab, step string) []string {
	t.Helper()
	return evalJS[[]string](t, tb, `Array.from(document.querySelectorAll('[data-timeline-step=`+jsString(step)+`] rect[data-n]')).map(r => r.dataset.n + '/' + r.dataset.g + '=' + r.getAttribute('class').replace('bar-', ''))`)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return fmt.Sprintf("%q", s) }

func TestUICommandRefusesBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ui", "--url", "ftp://svc.example.com"}, "is not an http(s) URL"},
		{[]string{"ui", "--url", "https://svc.example.com", "--listen", "0.0.0.0:0"}, "must be a loopback address"},
		{[]string{"ui", "--url", "https://svc.example.com", "--listen", "nonsense"}, "must be a loopback address"},
	} {
		_, _, err := runArgs(t, append(c.args, "--data", t.TempDir())...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
