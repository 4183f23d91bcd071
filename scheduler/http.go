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

// TokenFunc mints an OIDC token for an audience.
type TokenFunc func(ctx context.Context, audience string) (string, error)

// HTTPFire returns a Fire that POSTs to baseURL + /pipeline/start the way Cloud
// Scheduler does: the body names the pipeline, X-CloudScheduler-ScheduleTime
// carries the scheduled time, and token (when set) supplies the OIDC token.
func HTTPFire(baseURL func() string, token TokenFunc, audience string, client *http.Client) Fire {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return func(ctx context.Context, def *pipeline.Definition, scheduled time.Time) error {
		body, _ := json.Marshal(map[string]string{"pipeline": def.Name})
		return post(ctx, client, baseURL()+"/pipeline/start", body, token, audience, map[string]string{
			"X-CloudScheduler-JobName":      "local-" + def.Name,
			"X-CloudScheduler-ScheduleTime": scheduled.UTC().Format(time.RFC3339),
		})
	}
}

// HTTPPost returns a Fire for Tick that POSTs an empty JSON object to
// baseURL()+path with an OIDC token, as a Cloud Scheduler HTTP job does.
func HTTPPost(baseURL func() string, path string, token TokenFunc, audience string, client *http.Client) func(ctx context.Context) error {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	return func(ctx context.Context) error {
		return post(ctx, client, baseURL()+path, []byte("{}"), token, audience, nil)
	}
}

// post makes one Scheduler-style call and turns a non-2xx answer into an error.
func post(ctx context.Context, client *http.Client, url string, body []byte, token TokenFunc, audience string, hdr map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CloudScheduler", "true")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if token != nil {
		tok, err := token(ctx, audience)
		if err != nil {
			return fmt.Errorf("scheduler: token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("scheduler: %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("scheduler: %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
