package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/logging"
	"github.com/pipelinehq/pipeline/notify"
	"github.com/pipelinehq/pipeline/pipeline"
)

// opsBackend is what the operator commands (enqueue, status, runs, watch,
// resume, cancel, backfill, stats) need from wherever they send: the
// orchestrator in this process (local or gcp backend) or a deployed service.
type opsBackend interface {
	Enqueue(ctx context.Context, req pipeline.EnqueueRequest) (pipeline.EnqueueResult, error)
	Resume(ctx context.Context, runID string) (pipeline.ResumeResult, error)
	Cancel(ctx context.Context, runID string) (pipeline.Run, error)
	Backfill(ctx context.Context, req pipeline.BackfillRequest) (pipeline.BackfillResult, error)
	Stats(ctx context.Context, pipelineName string, since time.Time) (statsResult, error)
	GetRun(ctx context.Context, runID string) (pipeline.Run, error)
	ListRuns(ctx context.Context, f pipeline.RunFilter) ([]pipeline.Run, error)
	// Pause, Unpause and Schedules: see ops_pause.go.
	Pause(ctx context.Context, req pipeline.PauseRequest) (pipeline.PauseState, error)
	Unpause(ctx context.Context, req pipeline.PauseRequest) (pipeline.PauseState, error)
	Schedules(ctx context.Context) ([]pipeline.ScheduleInfo, error)
	// Executes reports whether the steps this backend enqueues run only while
	// this process lives (the local backend): commands then stay until the
	// work they caused is done.
	Executes() bool
	// Busy reports whether the in-process service is handling a request.
	Busy() bool
	// Idle reports whether a backend that executes has nothing queued or
	// in flight: nothing more happens until someone enqueues.
	Idle() bool
	// Catalog is the loaded pipelines, or nil when unknown (--url).
	Catalog() *pipeline.Catalog
	// Wake is signalled when something changed (local backend), else nil.
	Wake() <-chan struct{}
	// Close stops what the backend started and releases it.
	Close() error
}

// statsResult is the answer of a stats query.
type statsResult struct {
	Since     time.Time                `json:"since"`
	Pipelines []pipeline.PipelineStats `json:"pipelines"`
}

// tokenSourceFunc mints identity tokens for an audience.
type tokenSourceFunc func(ctx context.Context, audience string) (oauth2.TokenSource, error)

// opsTarget is where an operator command sends, and how it prints; every
// operator command embeds it.
type opsTarget struct {
	URL     string `name:"url" env:"PIPELINE_URL" help:"Send to the deployed service at this URL, with an identity token from your Google credentials (audience: --audience, else the URL). Default: the local store, or Cloud Tasks + Firestore with PIPELINE_BACKEND=gcp."`
	IDToken string `name:"id-token" env:"PIPELINE_ID_TOKEN" help:"With --url: send this identity token instead of minting one (e.g. gcloud auth print-identity-token --impersonate-service-account=SA --audiences=URL)."`
	JSON    bool   `name:"json" help:"Print JSON instead of a table."`
	Verbose bool   `name:"verbose" short:"v" help:"Write the service's JSON logs to stderr (local backend: instead of DATA/logs/pipeline.log)."`

	// tokens mints identity tokens for --url; nil means idtoken.NewTokenSource.
	tokens tokenSourceFunc
}

// open connects to where the command sends. execute asks the local backend
// to run what gets enqueued (the HTTP server on loopback and the queue).
func (t *opsTarget) open(ctx context.Context, cfg *Config, env *appEnv, execute bool) (opsBackend, error) {
	if t.URL != "" {
		return t.openURL(ctx, cfg)
	}
	if t.IDToken != "" {
		return nil, usage(errors.New("--id-token is only used with --url"))
	}
	return t.openDirect(ctx, cfg, env, execute)
}

func (t *opsTarget) openURL(ctx context.Context, cfg *Config) (opsBackend, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usage(fmt.Errorf("--url %q is not an http(s) URL of the service", t.URL))
	}
	audience := cfg.Audience
	if audience == "" {
		audience = t.URL
	}
	var ts oauth2.TokenSource
	var why401 func(string) string
	switch {
	case t.IDToken != "":
		ts = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: t.IDToken})
	default:
		mint := t.tokens
		if mint == nil {
			mint = func(ctx context.Context, aud string) (oauth2.TokenSource, error) {
				return idtoken.NewTokenSource(ctx, aud)
			}
		}
		var keyErr error
		if isLoopback(u.Hostname()) && cfg.Backend == "local" && t.tokens == nil {
			// A local `pipeline serve` on this machine: sign with its key
			// from the data directory, as its own queue does.
			iss, lerr := auth.LoadLocalIssuer(localKeyPath(cfg), localIssuer, localCaller)
			if lerr == nil {
				tok, terr := iss.Token(ctx, localAudience)
				if terr == nil {
					ts = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})
					why401 = func(string) string {
						return fmt.Sprintf("the service did not accept a token signed with the local key %s: is this serve using another data directory? pass its --data", localKeyPath(cfg))
					}
					break
				}
				lerr = terr
			}
			keyErr = lerr
		}
		ts, err = mint(ctx, audience)
		if err != nil {
			if !isLoopback(u.Hostname()) {
				return nil, fmt.Errorf("could not mint an identity token for audience %s from your Google credentials: %w (use a service account's credentials, or pass --id-token)", audience, err)
			}
			ts = nil // a local `pipeline serve` may run with PIPELINE_AUTH=off
			mintErr := err
			why401 = func(string) string {
				if keyErr != nil {
					return fmt.Sprintf("no token was sent: the local issuer key was not found (%v), so this is not the data directory of the serve at %s; pass its --data (or --id-token $(pipeline token --data DIR))", keyErr, t.URL)
				}
				return fmt.Sprintf("no token was sent: no Google credentials were found (%v); run `gcloud auth application-default login` or pass --id-token", oneLine(mintErr.Error(), 200))
			}
		}
	}
	return &httpOps{base: u.String(), audience: audience, tokens: ts, client: &http.Client{Timeout: 60 * time.Second}, why401: why401}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// directOps runs the operations on an orchestrator in this process.
type directOps struct {
	a        *app
	executes bool
	wake     chan struct{}
	inflight *inflight
	stop     func()
	closeLog func() error
}

var _ opsBackend = (*directOps)(nil)

func (t *opsTarget) openDirect(ctx context.Context, cfg *Config, env *appEnv, execute bool) (opsBackend, error) {
	local := cfg.Backend == "local"
	if err := preflight(cfg); err != nil {
		return nil, err // before the log directory is created
	}
	logw, closeLog, err := t.logWriter(cfg, env)
	if err != nil {
		return nil, err
	}
	log := logging.New(logw, logLevel(cfg, local || t.Verbose), cfg.Project)
	d := &directOps{wake: make(chan struct{}, 1), closeLog: closeLog}
	d.inflight = &inflight{done: d.poke}
	wake := notify.Func(func(context.Context, pipeline.Event) error {
		d.poke()
		return nil
	})
	a, err := buildApp(ctx, cfg, log, wake)
	if err != nil {
		_ = closeLog()
		return nil, err
	}
	d.a = a
	if !local || !execute {
		return d, nil
	}
	// Nothing else runs what gets enqueued in the local store: serve the
	// step routes on loopback and run the queue, as `run` does.
	d.executes = true
	a.handler = d.inflight.wrap(a.handler)
	bound, err := a.listen("127.0.0.1:0")
	if err != nil {
		a.close()
		_ = closeLog()
		return nil, err
	}
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := a.serve(sctx, bound, nil); err != nil {
			log.Error("local service stopped", "error", err.Error())
		}
	}()
	d.stop = func() {
		stop()
		<-served
	}
	return d, nil
}

// logWriter is where the in-process service logs: stderr with --verbose,
// else DATA/logs/pipeline.log for the local backend (as `run` does) and
// stderr (warnings only) for gcp.
func (t *opsTarget) logWriter(cfg *Config, env *appEnv) (io.Writer, func() error, error) {
	nop := func() error { return nil }
	if t.Verbose || cfg.Backend != "local" {
		return env.stderr, nop, nil
	}
	dir := filepath.Join(cfg.Data, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "pipeline.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	return f, f.Close, nil
}

// logLevel is the configured level, or at least warn when the logs go to
// the terminal unasked.
func logLevel(cfg *Config, asConfigured bool) slog.Level {
	l, _ := cfg.level()
	if !asConfigured && l < slog.LevelWarn {
		return slog.LevelWarn
	}
	return l
}

func (d *directOps) Enqueue(ctx context.Context, req pipeline.EnqueueRequest) (pipeline.EnqueueResult, error) {
	return d.a.orch.Enqueue(ctx, req)
}

func (d *directOps) Resume(ctx context.Context, runID string) (pipeline.ResumeResult, error) {
	return d.a.orch.Resume(ctx, runID)
}

func (d *directOps) Cancel(ctx context.Context, runID string) (pipeline.Run, error) {
	return d.a.orch.Cancel(ctx, runID)
}

func (d *directOps) Backfill(ctx context.Context, req pipeline.BackfillRequest) (pipeline.BackfillResult, error) {
	return d.a.orch.Backfill(ctx, req)
}

func (d *directOps) Stats(ctx context.Context, pipelineName string, since time.Time) (statsResult, error) {
	out, err := d.a.orch.Stats(ctx, pipelineName, since)
	if out == nil {
		out = []pipeline.PipelineStats{}
	}
	return statsResult{Since: since.UTC(), Pipelines: out}, err
}

func (d *directOps) GetRun(ctx context.Context, runID string) (pipeline.Run, error) {
	if _, _, err := pipeline.SplitRunID(runID); err != nil {
		return pipeline.Run{}, err
	}
	r, err := d.a.orch.Ledger().GetRun(ctx, runID)
	if err != nil {
		return pipeline.Run{}, d.a.orch.Catalog().ExplainMissingRun(runID, fmt.Errorf("run %s: %w", runID, err))
	}
	return r, nil
}

func (d *directOps) ListRuns(ctx context.Context, f pipeline.RunFilter) ([]pipeline.Run, error) {
	runs, err := d.a.orch.Ledger().ListRuns(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

func (d *directOps) Executes() bool             { return d.executes }
func (d *directOps) Busy() bool                 { return d.inflight.n.Load() > 0 }
func (d *directOps) Catalog() *pipeline.Catalog { return d.a.orch.Catalog() }
func (d *directOps) Wake() <-chan struct{}      { return d.wake }

func (d *directOps) Idle() bool {
	return d.executes && d.a.queuePending != nil && d.a.queuePending() == 0 && !d.Busy()
}

// poke wakes a follow loop: something changed.
func (d *directOps) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *directOps) Close() error {
	if d.stop != nil {
		// Let deliveries being answered finish before the server stops,
		// so that the queue records them as done.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.inflight.waitIdle(ctx)
		cancel()
		d.stop()
	}
	d.a.close()
	return d.closeLog()
}

// inflight counts requests being handled by the in-process service and
// calls done after each.
type inflight struct {
	n    atomic.Int64
	done func()
}

func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		defer f.done()
		defer f.n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// waitIdle returns when no request is being handled, or ctx ends.
func (f *inflight) waitIdle(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for f.n.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
