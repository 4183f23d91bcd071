package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/local"
	"github.com/pipelinehq/pipeline/ui"
)

// withDashboard mounts the web dashboard at /ui/ beside the API and guards
// the whole service against cross-site state-changing requests.
func (a *app) withDashboard(ctx context.Context, api http.Handler, authn pipeline.Authenticator) (http.Handler, error) {
	cfg := ui.Config{Orchestrator: a.orch, Backend: a.cfg.Backend, Project: a.cfg.Project, Logger: a.log,
		AuthOff: a.cfg.Auth == "off"}
	if !cfg.AuthOff && a.cfg.IAPAudience != "" {
		if err := a.iapRoles(ctx, &cfg); err != nil {
			return nil, err
		}
	} else if !cfg.AuthOff {
		cfg.Operators = a.operators
		if cfg.Operators == nil {
			cfg.Operators = authn
		}
		cfg.Viewers = ui.Closed("ALLOWED_VIEWERS")
		if len(a.cfg.AllowedViewers) > 0 && a.verifier != nil {
			v, err := a.verifier.WithAllowed("ALLOWED_VIEWERS", a.cfg.AllowedViewers)
			if err != nil {
				return nil, fmt.Errorf("ALLOWED_VIEWERS: %w", err)
			}
			cfg.Viewers = v
		}
	}
	if a.localQueue != nil {
		cfg.Queue = localQueueLister{a.localQueue}
	} else if a.cfg.Project != "" {
		cfg.TasksConsoleURL = fmt.Sprintf("https://console.cloud.google.com/cloudtasks/queue/%s/%s/tasks?project=%s",
			url.PathEscape(a.cfg.TasksLocation), url.PathEscape(a.cfg.TasksQueue), url.QueryEscape(a.cfg.Project))
	}
	dash, err := ui.New(cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(ui.Prefix, dash)
	mux.Handle("GET /ui", http.RedirectHandler(ui.Prefix, http.StatusFound))
	mux.Handle("/", api)
	return ui.Guard(mux), nil
}

// iapRoles makes the dashboard's roles verify Identity-Aware Proxy's signed
// header (IAP_AUDIENCE): a valid assertion is its email, then
// ALLOWED_OPERATORS and ALLOWED_VIEWERS apply; a missing or bad one is 401,
// whatever the lists (an empty list refuses a verified caller with 403). The
// service's API routes keep their OIDC bearer tokens (Cloud Tasks, Cloud
// Scheduler and the CLI call them).
func (a *app) iapRoles(ctx context.Context, cfg *ui.Config) error {
	viewers, err := auth.NewIAPVerifier(ctx, auth.IAPConfig{Audience: a.cfg.IAPAudience, KeysURL: a.cfg.IAPKeysURL,
		Allowed: a.cfg.AllowedViewers, AllowListName: "ALLOWED_VIEWERS"})
	if err != nil {
		return fmt.Errorf("IAP_AUDIENCE: %w", err)
	}
	operators, err := viewers.WithAllowed("ALLOWED_OPERATORS", a.cfg.AllowedOperators)
	if err != nil {
		return fmt.Errorf("ALLOWED_OPERATORS: %w", err)
	}
	cfg.Viewers, cfg.Operators, cfg.BehindIAP = viewers, operators, true
	a.log.Info("dashboard behind Identity-Aware Proxy: /ui/ authenticates by the X-Goog-IAP-JWT-Assertion header only", "audience", a.cfg.IAPAudience)
	return nil
}

// localQueueLister shows the local queue on the dashboard.
type localQueueLister struct{ q *local.Queue }

func (l localQueueLister) QueueTasks(ctx context.Context) (waiting, dead []ui.QueueTask, err error) {
	for _, t := range l.q.Waiting() {
		waiting = append(waiting, ui.QueueTask{Name: t.Task.Name, RunID: t.Task.Payload.RunID, Step: t.Task.Payload.Step,
			ETA: t.ETA, Created: t.CreatedAt, Attempts: t.Attempts, LastError: t.LastError})
	}
	dls, err := l.q.DeadLetters(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range dls {
		dead = append(dead, ui.QueueTask{Name: d.Task.Name, RunID: d.Task.Payload.RunID, Step: d.Task.Payload.Step,
			Created: d.CreatedAt, Attempts: d.Attempts, LastError: d.LastError, DiedAt: d.DiedAt})
	}
	return waiting, dead, nil
}
