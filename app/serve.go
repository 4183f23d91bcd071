package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/pipelinehq/pipeline/internal/idlemem"
	"github.com/pipelinehq/pipeline/scheduler"
)

type serveCmd struct {
	Port           int           `env:"PORT" default:"8080" help:"Port to listen on (Cloud Run sets PORT)."`
	Host           string        `env:"PIPELINE_HOST" default:"" help:"Interface to listen on (default: all with auth on; 127.0.0.1 with auth off, give 0.0.0.0 to listen on all)."`
	Dev            bool          `help:"Local development: auth off (PIPELINE_AUTH=off), listening on 127.0.0.1 only unless --host is given."`
	Cron           bool          `env:"PIPELINE_CRON" default:"true" negatable:"" help:"Local backend: fire each pipeline's schedule in its time zone, as Cloud Scheduler would, and the reconcile tick."`
	ReconcileEvery time.Duration `env:"PIPELINE_RECONCILE_EVERY" default:"5m" help:"Local backend: how often the local cron calls POST /pipeline/reconcile (the stuck-run sweeper)."`
}

func (s *serveCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if s.Port < 0 || s.Port > 65535 {
		return exitCode{code: ExitUsage, msg: fmt.Sprintf("PORT: %d is not a port (0..65535)", s.Port)}
	}
	if s.Dev {
		cfg.Auth = "off"
	}
	log := newLogger(cfg, env.stdout)
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	ln, err := a.listen(net.JoinHostPort(listenHost(s.Host, cfg.Auth == "off"), strconv.Itoa(s.Port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("port %d is already in use (another pipeline serve?): choose another with --port N or PORT=N", s.Port)
	}
	if err != nil {
		return err
	}
	if cfg.Auth == "off" {
		s.announceAuthOff(env, ln.Addr().String())
	}
	if cfg.Backend == "local" {
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		forget, err := recordHolder(cfg, "http://"+net.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		defer forget()
	}
	if cfg.Backend == "local" && s.Cron {
		cron := &scheduler.Local{
			Catalog: a.orch.Catalog(), Logger: log,
			Fire: scheduler.HTTPFire(func() string { return a.baseURL }, a.token, a.audience, nil),
			Paused: func(ctx context.Context, name string) (bool, error) {
				st, err := a.orch.PauseState(ctx, name)
				return st.Paused, err
			},
		}
		a.runners = append(a.runners, cron.Run)
		if s.ReconcileEvery > 0 {
			tick := &scheduler.Tick{Every: s.ReconcileEvery, Logger: log,
				Fire: scheduler.HTTPPost(func() string { return a.baseURL }, "/pipeline/reconcile", a.token, a.audience, nil)}
			a.runners = append(a.runners, tick.Run)
		}
	}
	// An empty GOGC is Go's default, as if unset.
	gcPercent, _ := tuneGC(cfg.Backend, os.Getenv("GOGC") != "")
	return a.serve(ctx, ln, func() {
		// Hand back what only start-up needed (its heap garbage, the
		// executable's pages package initialisation touched), beside the
		// first requests: an idle local service keeps ~6 MB less resident.
		go func() {
			if err := idlemem.Release(); err != nil {
				log.Debug("releasing start-up memory", "err", err)
			}
		}()
		log.Info("pipeline service listening", "addr", ln.Addr().String(), "backend", cfg.Backend,
			"auth", cfg.Auth, "pipelines", len(a.orch.Catalog().All()), "gc_percent", gcPercent, "started_at", time.Now().UTC().Format(time.RFC3339Nano))
	})
}

// listenHost is the interface serve binds: the one given, else every
// interface with auth on (Cloud Run) and loopback only with auth off, so that
// a service without token checks is reachable from this machine only unless
// the user names an address.
func listenHost(given string, authOff bool) string {
	if given == "" && authOff {
		return "127.0.0.1"
	}
	return given
}

// announceAuthOff tells the user, on stderr and beyond the JSON log, that
// every caller is accepted and where.
func (s *serveCmd) announceAuthOff(env *appEnv, addr string) {
	mode := "PIPELINE_AUTH=off"
	if s.Dev {
		mode = "DEVELOPMENT MODE (--dev)"
	}
	fmt.Fprintf(env.stderr, "pipeline: %s: AUTHENTICATION IS OFF, every caller is accepted.\n", mode)
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		fmt.Fprintf(env.stderr, "pipeline: listening on %s only (this machine); try: curl -s http://%s/pipeline/runs\n", addr, addr)
		return
	}
	fmt.Fprintf(env.stderr, "pipeline: WARNING: listening on %s (port %s), reachable from other machines without any token check.\n", addr, port)
}
