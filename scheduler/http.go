package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// HTTPFire returns a Fire that POSTs to baseURL + /pipeline/start the way Cloud
// Scheduler does: the body names the pipeline, X-CloudScheduler-ScheduleTime
// carries the scheduled time, and token (when set) supplies the OIDC token.
func HTTPFire(baseURL func() string, token func(ctx context.Context, audience string) (string, error), audience string, client *http.Client) Fire {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return func(ctx context.Context, def *pipeline.Definition, scheduled time.Time) error {
		body, _ := json.Marshal(map[string]string{"pipeline": def.Name})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL()+"/pipeline/start", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CloudScheduler", "true")
		req.Header.Set("X-CloudScheduler-JobName", "local-"+def.Name)
		req.Header.Set("X-CloudScheduler-ScheduleTime", scheduled.UTC().Format(time.RFC3339))
		if token != nil {
			tok, err := token(ctx, audience)
			if err != nil {
				return fmt.Errorf("scheduler: token: %w", err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("scheduler: start %s: %w", def.Name, err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("scheduler: start %s: %s: %s", def.Name, resp.Status, bytes.TrimSpace(msg))
		}
		return nil
	}
}
