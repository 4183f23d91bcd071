package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/logging"
	"github.com/pipelinehq/pipeline/notify"
	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/local"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/bigquery"
	"github.com/pipelinehq/pipeline/steps/cloudrunjob"
)

// Local-mode identities: the in-process queue and cron sign their calls with a
// key kept in the data directory (readable by its owner only), and the
// service verifies them with the same verifier code that checks Google's
// tokens in production.
const (
	localIssuer   = "https://pipeline.local"
	localAudience = "pipeline-local"
	localCaller   = "local-invoker@pipeline.local"
)

// localKeyPath is where the local issuer keeps its key (mode 0600), so that
// operator commands on the same machine can call a local `serve` with auth on.
func localKeyPath(cfg *Config) string { return filepath.Join(cfg.Data, "local-issuer.pem") }

// app is the assembled service: orchestrator, HTTP handler and the background
// parts of the chosen backend.
type app struct {
	cfg     *Config
	log     *slog.Logger
	orch    *pipeline.Orchestrator
	handler http.Handler
	// baseURL is where the service listens, once bound.
	baseURL string
	// token signs calls to the service (local mode with auth on).
	token    func(ctx context.Context, audience string) (string, error)
	audience string
	// operators verifies callers of operator routes (nil: the invokers').
	operators pipeline.Authenticator
	// background parts started by start(), stopped by close().
	runners []func(ctx context.Context) error
	closers []func() error
	setBase func(string)
	// queuePending counts the local queue's waiting and in-flight tasks
	// (local backend; nil otherwise).
	queuePending func() int
	// verifier checks callers' tokens (auth on); the dashboard's roles are
	// allowlists over it.
	verifier *auth.Verifier
	// localQueue is the local backend's queue (nil on gcp).
	localQueue *local.Queue
	// localCommits counts the local store's commits (nil on gcp).
	localCommits func() uint64
	// inproc is the local queue's transport to this process's handler.
	inproc *inProcess
	// client calls the service's own routes over HTTP (start); its idle
	// connections are kept, many per host, so that concurrent callers reuse
	// them instead of dialling (and the server accepting) one per call.
	client *http.Client
}

// selfClient is the client for calls to the service's own routes:
// http.DefaultTransport keeps two idle connections per host, so callers
// beyond two dialled a fresh connection every time.
func selfClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t}
}

// newLogger builds the Cloud Logging JSON logger.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	level, _ := cfg.level()
	return logging.New(w, level, cfg.Project)
}

// newRegistry is the step registry: the built-in kinds, the Google Cloud
// kinds (their clients created when a step first needs them) and the
// kinds of the options (the example kinds in the stock binary).
func newRegistry(cfg *Config) *steps.Registry {
	reg := steps.NewRegistry()
	cloudrunjob.Register(reg, cloudrunjob.NewClients())
	bigquery.Register(reg)
	for _, register := range cfg.stepSets {
		register(reg, cfg)
	}
	return reg
}

// loadCatalog builds the step registry and loads the pipeline files.
func loadCatalog(cfg *Config) (*pipeline.Catalog, error) {
	return pipeline.LoadFiles(cfg.File, newRegistry(cfg))
}

// buildApp assembles the service for cfg.Backend. extra notifiers get every
// event after the log notifier.
func buildApp(ctx context.Context, cfg *Config, log *slog.Logger, extra ...pipeline.Notifier) (*app, error) {
	if err := preflight(cfg); err != nil {
		return nil, err
	}
	reg := newRegistry(cfg)
	catalog, err := pipeline.LoadFiles(cfg.File, reg)
	if err != nil {
		return nil, fmt.Errorf("pipelines:\n%w", err)
	}
	a := &app{cfg: cfg, log: log, client: selfClient()}
	a.closers = append(a.closers, func() error { a.client.CloseIdleConnections(); return nil })
	var led pipeline.Ledger
	var q pipeline.Queue
	var authn pipeline.Authenticator
	switch cfg.Backend {
	case "local":
		led, q, authn, err = a.localBackend(ctx)
	case "gcp":
		led, q, authn, err = a.gcpBackend(ctx)
	}
	if err != nil {
		a.close()
		return nil, err
	}
	if st, ok := led.(*boltledger.Store); ok && cfg.wrap.Queue != nil {
		led = st.Ledger // its one-commit transitions would bypass the wrapped queue
	}
	if cfg.wrap.Ledger != nil {
		led = cfg.wrap.Ledger(led)
	}
	if cfg.wrap.Queue != nil {
		q = cfg.wrap.Queue(q)
	}
	if cfg.Auth == "off" {
		authn, a.operators = auth.Off{}, nil
		if cfg.Backend == "gcp" {
			log.Warn("AUTHENTICATION IS OFF (PIPELINE_AUTH=off) on the gcp backend, allowed because both emulators are set: every caller is accepted and no delivery's token is checked. Never run like this against real Cloud Tasks or Firestore.",
				"cloud_tasks_emulator_host", cfg.TasksEmulator, "firestore_emulator_host", cfg.firestoreEmulator)
		} else {
			log.Warn("AUTHENTICATION IS OFF (PIPELINE_AUTH=off): every caller is accepted. Never run like this outside local development.")
		}
	}
	notifiers := pipeline.Notifiers{&notify.Log{Logger: log}}
	if cfg.DiscordWebhook != "" {
		// Retries and outage pacing are the notifier's defaults
		// (discord.DefaultMaxRetries, discord.DefaultOutageInterval).
		d, err := discord.New(discord.Config{WebhookURL: cfg.DiscordWebhook, Mention: cfg.DiscordMention,
			Revision: cfg.Revision, Project: cfg.Project, DashboardURL: cfg.DashboardURL, Store: led, Logger: log, Now: cfg.clock})
		if err != nil {
			a.close()
			return nil, fmt.Errorf("discord: %w", err)
		}
		notifiers = append(notifiers, d)
		a.runners = append(a.runners, d.Run)
	}
	notifiers = append(notifiers, extra...)
	var notifier pipeline.Notifier = notifiers
	if cfg.wrap.Notifier != nil {
		notifier = cfg.wrap.Notifier(notifier)
	}
	a.orch, err = pipeline.New(pipeline.Config{Catalog: catalog, Ledger: led, Queue: q, Notifier: notifier, Logger: log, LeaseGrace: cfg.LeaseGrace.Duration, Registry: reg, Now: cfg.clock,
		Jobs: a.schedulerJobs(cfg, os.Getenv, log)})
	if err != nil {
		a.close()
		return nil, err
	}
	a.closers = append(a.closers, func() error { return a.closeNotifications(context.Background(), notifyGrace) })
	a.handler, err = pipeline.NewHandler(pipeline.ServerConfig{
		Orchestrator: a.orch, Auth: authn, Operators: a.operators, Logger: log,
		RequestContext: func(r *http.Request) *http.Request { return r.WithContext(logging.WithTrace(r.Context(), r)) },
	})
	if err != nil {
		a.close()
		return nil, err
	}
	if a.handler, err = a.withDashboard(ctx, a.handler, authn); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// localBackend opens the embedded store (one bbolt file shared by the ledger
// and the queue) and the local token issuer.
func (a *app) localBackend(ctx context.Context) (pipeline.Ledger, pipeline.Queue, pipeline.Authenticator, error) {
	// The issuer's key (read, or made and written with its fsync) while the
	// store is opened (on a fresh data directory, created with its own
	// fsyncs): a cold start waits for the longer of the two, not both.
	type issuerResult struct {
		iss *auth.LocalIssuer
		err error
	}
	issuer := make(chan issuerResult, 1)
	if a.cfg.Auth == "on" {
		go func() {
			iss, err := auth.OpenLocalIssuer(localKeyPath(a.cfg), localIssuer, localCaller)
			issuer <- issuerResult{iss, err}
		}()
	} else {
		issuer <- issuerResult{}
	}
	db, err := boltledger.OpenDB(filepath.Join(a.cfg.Data, "pipeline.db"))
	if err != nil {
		<-issuer
		return nil, nil, nil, storeBusy(a.cfg, err)
	}
	a.closers = append(a.closers, db.Close)
	led, err := boltledger.New(db, local.CreateBuckets)
	if err != nil {
		<-issuer
		return nil, nil, nil, err
	}
	// The queue's writes share the ledger's group commits (one fsync for both).
	// It always delivers to this process's own handler: in memory, not over
	// loopback TCP (inProcess).
	a.inproc = newInProcess(func() http.Handler { return a.handler })
	qcfg := local.Config{QueueName: "local", Logger: a.log, Commit: led.Committer().Batch, Client: a.inproc.client()}
	var authn pipeline.Authenticator
	ir := <-issuer
	if a.cfg.Auth == "on" {
		iss, err := ir.iss, ir.err
		if err != nil {
			return nil, nil, nil, err
		}
		v, err := auth.NewVerifier(ctx, auth.Config{Audience: localAudience, Issuer: localIssuer, Allowed: []string{localCaller}, KeySet: iss.KeySet()})
		if err != nil {
			return nil, nil, nil, err
		}
		authn, a.verifier = v, v
		a.token, a.audience = iss.Token, localAudience
		qcfg.Token, qcfg.Audience = iss.Token, localAudience
	}
	q, err := local.New(db, qcfg)
	if err != nil {
		return nil, nil, nil, err
	}
	a.setBase = q.SetBaseURL
	a.queuePending = q.Pending
	a.localQueue = q
	a.localCommits = led.Committer().Commits
	a.runners = append(a.runners, q.Run)
	// A linear step transition writes the step, its successor's task and the
	// delivered task's deletion in one commit (pipeline.Transitioner).
	return led.WithTasks(q), q, authn, nil
}

// listen binds addr and records the base URL the local queue and cron call.
func (a *app) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	a.baseURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	if a.setBase != nil {
		a.setBase(a.baseURL)
	}
	return ln, nil
}

// Shutdown timing. Cloud Run sends SIGKILL 10 s after SIGTERM: serve exits
// within shutdownBudget. Requests in flight get drainGrace to finish; then
// their contexts are cancelled with pipeline.ErrShutdown: a step body still
// running is released for the retry (not counted against its attempts) and
// notifications still waiting (an unreachable Discord) are given up, staying
// owed in the ledger for the sweeper.
const (
	shutdownBudget = 5 * time.Second
	drainGrace     = time.Second
)

// notifyGrace is how long a command waits, as it exits, for the
// notifications its orchestrator sends in the background (serve gives them
// drainGrace once its requests are over). One not sent by then stays owed in
// the ledger when it is a final one; the sweeper sends it.
const notifyGrace = 5 * time.Second

// closeNotifications closes the orchestrator's background sender within
// grace (and ctx).
func (a *app) closeNotifications(ctx context.Context, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if err := a.orch.Close(ctx); err != nil {
		return fmt.Errorf("notifications given up (final ones stay owed): %w", err)
	}
	return nil
}

// serve runs the HTTP server and the background parts until ctx is done, then
// shuts down within shutdownBudget.
func (a *app) serve(ctx context.Context, ln net.Listener, started func()) error {
	base, stopRequests := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopRequests(pipeline.ErrShutdown)
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	tl := newTrackingListener(ln)
	errc := make(chan error, 1+len(a.runners))
	go func() { errc <- srv.Serve(tl) }()
	// In-process deliveries (local mode) are requests like the server's.
	a.inproc.open(base)
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{}, len(a.runners))
	for _, run := range a.runners {
		go func() {
			if err := run(bg); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
			}
			done <- struct{}{}
		}()
	}
	if started != nil {
		started()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownBudget)
	defer cancel()
	stopBG() // no new deliveries, cron ticks or notifier passes
	inprocIdle := a.inproc.close()
	srvDone := make(chan error, 1)
	// Connections that never carried a request are closed at once
	// (shutdownServer); the others, and the in-process deliveries, finish
	// within the grace.
	go func() {
		err := shutdownServer(shutdown, srv, tl)
		select {
		case <-inprocIdle:
		case <-shutdown.Done():
		}
		srvDone <- err
	}()
	grace := time.NewTimer(drainGrace)
	defer grace.Stop()
	var serr error
	select {
	case serr = <-srvDone:
	case <-grace.C:
		a.log.Info("shutting down: interrupting the requests still in flight")
		stopRequests(pipeline.ErrShutdown)
		serr = <-srvDone
	}
	// The notifications the requests handed over get the grace once more;
	// a final one not sent by then stays owed in the ledger (the sweeper).
	if err := a.closeNotifications(shutdown, drainGrace); err != nil {
		a.log.Info("shutting down: " + err.Error())
	}
	for range a.runners {
		select {
		case <-done:
		case <-shutdown.Done():
		}
	}
	if serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("close", "error", err.Error())
		}
	}
	a.closers = nil
}
