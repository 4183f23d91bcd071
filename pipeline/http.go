package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
)

// MaxBodyBytes bounds every request body (Cloud Tasks tasks are at most 100 KB).
const MaxBodyBytes = 64 << 10

// ServerConfig wires the HTTP API.
type ServerConfig struct {
	Orchestrator *Orchestrator
	// Auth verifies callers of every route but /healthz. Required: pass an
	// explicit "off" authenticator to disable checks.
	Auth Authenticator
	// Operators verifies callers of the operator routes (enqueue, resume,
	// cancel, backfill, stats): ALLOWED_OPERATORS. Nil means Auth. Reading run
	// history accepts either.
	Operators Authenticator
	Logger    *slog.Logger
	// RequestContext decorates a request's context (e.g. with its trace).
	RequestContext func(r *http.Request) *http.Request
}

// NewHandler returns the service's HTTP handler (Echo v5).
func NewHandler(cfg ServerConfig) (http.Handler, error) {
	if cfg.Orchestrator == nil {
		return nil, errors.New("http: no orchestrator")
	}
	if cfg.Auth == nil {
		return nil, errors.New("http: no authenticator (auth fails closed; use an explicit off switch for local development)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Operators == nil {
		cfg.Operators = cfg.Auth
	}
	s := &server{o: cfg.Orchestrator, auth: cfg.Auth, ops: cfg.Operators, log: cfg.Logger}
	e := echo.New()
	e.Logger = cfg.Logger
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover())
	if cfg.RequestContext != nil {
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c *echo.Context) error {
				c.SetRequest(cfg.RequestContext(c.Request()))
				return next(c)
			}
		})
	}
	e.GET("/healthz", func(c *echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	invokers := s.authenticate(s.auth)
	operators := s.authenticate(s.ops)
	either := s.authenticate(anyOf{s.auth, s.ops})
	g := e.Group("/pipeline")
	g.POST("/start", s.start, invokers)
	g.POST("/steps/:step", s.step, invokers)
	g.POST("/reconcile", s.reconcile, invokers)
	g.GET("/pipelines", s.listPipelines, either)
	g.GET("/runs", s.listRuns, either)
	g.GET("/runs/:run", s.getRun, either)
	g.POST("/runs/:run/steps/:step/enqueue", s.enqueue, operators)
	g.POST("/runs/:run/resume", s.resume, operators)
	g.POST("/runs/:run/cancel", s.cancel, operators)
	g.POST("/backfill", s.backfill, operators)
	g.GET("/stats", s.stats, operators)
	s.scheduleRoutes(g, operators, either)
	return e, nil
}

type server struct {
	o    *Orchestrator
	auth Authenticator
	ops  Authenticator
	log  *slog.Logger
}

// anyOf accepts a caller any of its authenticators accepts; the error is the
// first one's, or a forbidden one's when a token was valid.
type anyOf []Authenticator

func (a anyOf) Authenticate(r *http.Request) (Caller, error) {
	var first error
	for _, x := range a {
		c, err := x.Authenticate(r)
		if err == nil {
			return c, nil
		}
		if first == nil || (errors.Is(err, ErrForbidden) && !errors.Is(first, ErrForbidden)) {
			first = err
		}
	}
	return Caller{}, first
}

// errorBody is every error answer's JSON.
type errorBody struct {
	Error  string      `json:"error"`
	Status int         `json:"status"`
	Result *StepResult `json:"result,omitempty"`
}

func (s *server) handleError(c *echo.Context, err error) {
	if resp, uerr := echo.UnwrapResponse(c.Response()); uerr == nil && resp.Committed {
		return
	}
	code := ErrorStatus(err)
	if sc := echo.StatusCode(err); sc != 0 {
		code = sc // routing errors: 404, 405
	}
	body := errorBody{Error: err.Error(), Status: code}
	var re *RetryableError
	if errors.As(err, &re) {
		body.Result = &re.Result
	}
	if code >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed", "path", c.Request().URL.Path, "status", code, "error", err.Error())
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, body)
}

func (s *server) authenticate(a Authenticator) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			caller, err := a.Authenticate(c.Request())
			if err != nil {
				return err
			}
			c.Set("caller", caller)
			return next(c)
		}
	}
}

// readJSON decodes a bounded JSON body strictly (no unknown fields, no key
// given twice in one object, nothing after the value) into v; an empty body leaves v
// as is when allowEmpty.
func readJSON(c *echo.Context, v any, allowEmpty bool) error {
	r := c.Request()
	data, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: body exceeds %d bytes", ErrTooLarge, MaxBodyBytes)
		}
		return fmt.Errorf("%w: reading body: %v", ErrInvalid, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if allowEmpty {
			return nil
		}
		return fmt.Errorf("%w: empty body, expected JSON", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: malformed JSON body: %v", ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: malformed JSON body: trailing data after the object", ErrInvalid)
	}
	if err := duplicateKey(data, v); err != nil {
		return fmt.Errorf("%w: malformed JSON body: %v", ErrInvalid, err)
	}
	return nil
}

// startResponse is the answer of POST /pipeline/start.
type startResponse struct {
	RunID   string    `json:"run_id"`
	Status  RunStatus `json:"status"`
	Created bool      `json:"created"`
	Run     Run       `json:"run"`
}

func (s *server) start(c *echo.Context) error {
	var req StartRequest
	if err := readJSON(c, &req, true); err != nil {
		return err
	}
	if q := c.QueryParam("pipeline"); q != "" && req.Pipeline == "" {
		req.Pipeline = q
	}
	h := c.Request().Header
	req.Trigger = "api"
	if v := h.Get("X-CloudScheduler-ScheduleTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("%w: X-CloudScheduler-ScheduleTime %q is not RFC 3339", ErrInvalid, v)
		}
		req.ScheduleTime = t
	}
	if h.Get("X-CloudScheduler") != "" || h.Get("X-CloudScheduler-JobName") != "" || h.Get("X-CloudScheduler-ScheduleTime") != "" {
		req.Trigger = "scheduler"
	}
	if v := h.Get("X-Pipeline-Trigger"); v != "" && len(v) <= 32 {
		req.Trigger = v
	}
	if skip, err := s.skipPaused(c, req); skip || err != nil {
		return err
	}
	res, err := s.o.Start(c.Request().Context(), req)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
	}
	return c.JSON(code, startResponse{RunID: res.Run.ID, Status: res.Run.Status, Created: res.Created, Run: res.Run})
}

// X-CloudTasks-TaskName and X-CloudTasks-TaskRetryCount, spelled as
// http.Header keys them: a Get with another spelling canonicalises it, an
// allocation per delivery.
const (
	headerTaskName   = "X-Cloudtasks-Taskname"
	headerRetryCount = "X-Cloudtasks-Taskretrycount"
)

func (s *server) step(c *echo.Context) error {
	var p TaskPayload
	if err := readJSON(c, &p, false); err != nil {
		return err
	}
	if route := c.Param("step"); p.Step == "" {
		p.Step = route
	} else if p.Step != route {
		return fmt.Errorf("%w: body names step %q but the route is /pipeline/steps/%s", ErrInvalid, p.Step, route)
	}
	if p.RunID == "" {
		return fmt.Errorf("%w: run_id is required", ErrInvalid)
	}
	h := c.Request().Header
	d := Delivery{TaskName: h.Get(headerTaskName)}
	if v := h.Get(headerRetryCount); v != "" {
		d.RetryCount, _ = strconv.Atoi(v)
	}
	res, err := s.o.HandleStep(c.Request().Context(), p, d)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *server) listRuns(c *echo.Context) error {
	f := RunFilter{Pipeline: c.QueryParam("pipeline"), Status: RunStatus(c.QueryParam("status"))}
	if err := validPipelineFilter(f.Pipeline); err != nil {
		return err
	}
	if f.Status != "" && !validRunStatus(f.Status) {
		return fmt.Errorf("%w: status %q is not one of pending, running, succeeded, failed, cancelled", ErrInvalid, f.Status)
	}
	if v := c.QueryParam("since"); v != "" {
		since, err := ParseSince(v, s.o.now())
		if err != nil {
			return err
		}
		f.Since = since
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%w: limit %q must be 1..1000", ErrInvalid, v)
		}
		f.Limit = n
	}
	runs, err := s.o.ledger.ListRuns(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []Run{}
	}
	for i := range runs {
		runs[i].Marks = RunMarks(runs[i])
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": runs})
}

func (s *server) getRun(c *echo.Context) error {
	id := c.Param("run")
	if _, _, err := SplitRunID(id); err != nil {
		return err
	}
	r, err := s.o.ledger.GetRun(c.Request().Context(), id)
	if err != nil {
		return s.o.catalog.ExplainMissingRun(id, fmt.Errorf("run %s: %w", id, err))
	}
	r.Marks = RunMarks(r)
	now := s.o.now()
	for i := range r.Steps {
		if st := &r.Steps[i]; st.Status == StepWaiting && !st.WaitingSince.IsZero() {
			st.WaitedMillis = max(now.Sub(st.WaitingSince).Milliseconds(), 0)
		}
	}
	return c.JSON(http.StatusOK, r)
}

// validPipelineFilter refuses a ?pipeline= filter that cannot name a
// pipeline (Firestore retries a query on a string that is not UTF-8 until the
// caller gives up, instead of failing it).
func validPipelineFilter(p string) error {
	if p != "" && !validName(p) {
		return fmt.Errorf("%w: pipeline %q is not a pipeline name (%s)", ErrInvalid, p, namePattern)
	}
	return nil
}

func validRunStatus(s RunStatus) bool {
	switch s {
	case RunPending, RunRunning, RunSucceeded, RunFailed, RunCancelled:
		return true
	}
	return false
}

// enqueueBody is the body of POST /pipeline/runs/{run}/steps/{step}/enqueue.
type enqueueBody struct {
	Only  bool `json:"only,omitempty"`
	Force bool `json:"force,omitempty"`
	// Params are used when the enqueue creates the run (PIPELINE@DATE of a
	// run that does not exist yet).
	Params map[string]string `json:"params,omitempty"`
}

func (s *server) enqueue(c *echo.Context) error {
	var b enqueueBody
	if err := readJSON(c, &b, true); err != nil {
		return err
	}
	req := EnqueueRequest{RunID: c.Param("run"), Step: c.Param("step"), Only: b.Only, Force: b.Force}
	if pipe, key, ok := strings.Cut(req.RunID, "@"); ok && key != "" && !strings.Contains(key, "@") {
		// PIPELINE@DATE of a run that may not exist yet: create it ad hoc.
		if _, err := time.Parse(time.DateOnly, key); err == nil {
			if _, err := s.o.ledger.GetRun(c.Request().Context(), req.RunID); errors.Is(err, ErrNotFound) {
				req = EnqueueRequest{Pipeline: pipe, Date: key, Step: req.Step, Only: b.Only, Force: b.Force, Params: b.Params}
			}
		}
	}
	res, err := s.o.Enqueue(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *server) resume(c *echo.Context) error {
	if err := readJSON(c, &struct{}{}, true); err != nil {
		return err
	}
	res, err := s.o.Resume(c.Request().Context(), c.Param("run"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *server) cancel(c *echo.Context) error {
	if err := readJSON(c, &struct{}{}, true); err != nil {
		return err
	}
	r, err := s.o.Cancel(c.Request().Context(), c.Param("run"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *server) backfill(c *echo.Context) error {
	var req BackfillRequest
	if err := readJSON(c, &req, false); err != nil {
		return err
	}
	res, err := s.o.Backfill(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *server) stats(c *echo.Context) error {
	since := s.o.now().AddDate(0, 0, -7)
	if v := c.QueryParam("since"); v != "" {
		t, err := ParseSince(v, s.o.now())
		if err != nil {
			return err
		}
		since = t
	}
	if err := validPipelineFilter(c.QueryParam("pipeline")); err != nil {
		return err
	}
	out, err := s.o.Stats(c.Request().Context(), c.QueryParam("pipeline"), since)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"since": since.UTC(), "pipelines": out})
}

func (s *server) reconcile(c *echo.Context) error {
	if err := readJSON(c, &struct{}{}, true); err != nil {
		return err
	}
	rep, err := s.o.Reconcile(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
