package app

import (
	"context"
	"fmt"
	"time"

	"github.com/pipelinehq/pipeline/scheduler"
)

type serveCmd struct {
	Port           int           `env:"PORT" default:"8080" help:"Port to listen on (Cloud Run sets PORT)."`
	Host           string        `env:"PIPELINE_HOST" default:"" help:"Interface to listen on (default all)."`
	Cron           bool          `env:"PIPELINE_CRON" default:"true" negatable:"" help:"Local backend: fire each pipeline's schedule in its time zone, as Cloud Scheduler would, and the reconcile tick."`
	ReconcileEvery time.Duration `env:"PIPELINE_RECONCILE_EVERY" default:"5m" help:"Local backend: how often the local cron calls POST /pipeline/reconcile (the stuck-run sweeper)."`
}

func (s *serveCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("PORT: %d is not a port", s.Port)
	}
	log := newLogger(cfg, env.stdout)
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	ln, err := a.listen(fmt.Sprintf("%s:%d", s.Host, s.Port))
	if err != nil {
		return err
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
	return a.serve(ctx, ln, func() {
		log.Info("pipeline service listening", "addr", ln.Addr().String(), "backend", cfg.Backend,
			"auth", cfg.Auth, "pipelines", len(a.orch.Catalog().All()), "started_at", time.Now().UTC().Format(time.RFC3339Nano))
	})
}
