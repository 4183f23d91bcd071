package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Tick calls Fire every Every until ctx is done: the local stand-in for the
// Scheduler job that drives POST /pipeline/reconcile.
type Tick struct {
	Every  time.Duration
	Fire   func(ctx context.Context) error
	Logger *slog.Logger
}

// Run blocks until ctx is done.
func (t *Tick) Run(ctx context.Context) error {
	if t.Logger == nil {
		t.Logger = slog.Default()
	}
	tk := time.NewTicker(t.Every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
			if err := t.Fire(ctx); err != nil && ctx.Err() == nil {
				t.Logger.Warn("scheduled tick failed", "error", err.Error())
			}
		}
	}
}

// HTTPPost returns a Fire that POSTs an empty JSON object to baseURL()+path
// with an OIDC token, as a Cloud Scheduler HTTP job does.
func HTTPPost(baseURL func() string, path string, token func(ctx context.Context, audience string) (string, error), audience string, client *http.Client) func(ctx context.Context) error {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL()+path, bytes.NewReader([]byte("{}")))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CloudScheduler", "true")
		if token != nil {
			tok, err := token(ctx, audience)
			if err != nil {
				return fmt.Errorf("scheduler: token: %w", err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("scheduler: %s: %w", path, err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("scheduler: %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
		}
		return nil
	}
}
