package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/pipelinehq/pipeline/pipeline"
)

// httpOps sends the operations to a deployed service's routes.
type httpOps struct {
	base     string
	audience string
	tokens   oauth2.TokenSource // nil: no Authorization header
	client   *http.Client
	// why401 is the hint for a 401, fitting where the token came from (or
	// why none was sent).
	why401 func(serviceMsg string) string
}

var _ opsBackend = (*httpOps)(nil)

// serviceError is an error answer of the service: its JSON {"error","status"}.
type serviceError struct {
	Status int
	Msg    string
	Hint   string
}

func (e *serviceError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d %s)", e.Msg, e.Status, http.StatusText(e.Status))
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Unwrap maps the status back to the domain error it came from.
func (e *serviceError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest:
		return pipeline.ErrInvalid
	case http.StatusUnauthorized:
		return pipeline.ErrUnauthorized
	case http.StatusForbidden:
		return pipeline.ErrForbidden
	case http.StatusNotFound:
		return pipeline.ErrNotFound
	case http.StatusConflict:
		return pipeline.ErrConflict
	}
	return nil
}

// do sends a request with a JSON body (if any) and decodes a 2xx JSON answer
// into out.
func (h *httpOps) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	u := strings.TrimSuffix(h.base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Pipeline-Trigger", "cli")
	if h.tokens != nil {
		tok, err := h.tokens.Token()
		if err != nil {
			return fmt.Errorf("identity token for audience %s: %w", h.audience, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		se := &serviceError{Status: resp.StatusCode}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			se.Msg = e.Error
		} else {
			se.Msg = fmt.Sprintf("%s %s: %s", method, u, oneLine(string(data), 200))
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			se.Hint = h.hint401(se.Msg)
		case http.StatusForbidden:
			se.Hint = "your identity must be listed in the service's ALLOWED_OPERATORS"
		}
		return se
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, u, err)
	}
	return nil
}

func runPath(runID string) string { return "/pipeline/runs/" + url.PathEscape(runID) }

func (h *httpOps) Enqueue(ctx context.Context, req pipeline.EnqueueRequest) (pipeline.EnqueueResult, error) {
	runID := req.RunID
	if runID == "" {
		if req.Pipeline == "" {
			p, err := h.onlyPipeline(ctx)
			if err != nil {
				return pipeline.EnqueueResult{}, err
			}
			req.Pipeline = p
		}
		// PIPELINE@DATE: the route creates the run if it does not exist.
		runID = pipeline.RunID(req.Pipeline, req.Date)
	}
	body := map[string]any{"only": req.Only, "force": req.Force, "params": req.Params}
	var out pipeline.EnqueueResult
	err := h.do(ctx, http.MethodPost, runPath(runID)+"/steps/"+url.PathEscape(req.Step)+"/enqueue", nil, body, &out)
	return out, err
}

func (h *httpOps) Resume(ctx context.Context, runID string) (pipeline.ResumeResult, error) {
	var out pipeline.ResumeResult
	err := h.do(ctx, http.MethodPost, runPath(runID)+"/resume", nil, struct{}{}, &out)
	return out, err
}

func (h *httpOps) Cancel(ctx context.Context, runID string) (pipeline.Run, error) {
	var out pipeline.Run
	err := h.do(ctx, http.MethodPost, runPath(runID)+"/cancel", nil, struct{}{}, &out)
	return out, err
}

func (h *httpOps) Backfill(ctx context.Context, req pipeline.BackfillRequest) (pipeline.BackfillResult, error) {
	var out pipeline.BackfillResult
	err := h.do(ctx, http.MethodPost, "/pipeline/backfill", nil, req, &out)
	return out, err
}

func (h *httpOps) Stats(ctx context.Context, pipelineName string, since time.Time) (statsResult, error) {
	q := url.Values{"since": {since.UTC().Format(time.RFC3339)}}
	if pipelineName != "" {
		q.Set("pipeline", pipelineName)
	}
	var out statsResult
	err := h.do(ctx, http.MethodGet, "/pipeline/stats", q, nil, &out)
	if out.Pipelines == nil {
		out.Pipelines = []pipeline.PipelineStats{}
	}
	return out, err
}

func (h *httpOps) GetRun(ctx context.Context, runID string) (pipeline.Run, error) {
	var out pipeline.Run
	err := h.do(ctx, http.MethodGet, runPath(runID), nil, nil, &out)
	return out, err
}

func (h *httpOps) ListRuns(ctx context.Context, f pipeline.RunFilter) ([]pipeline.Run, error) {
	q := url.Values{}
	if f.Pipeline != "" {
		q.Set("pipeline", f.Pipeline)
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out struct {
		Runs []pipeline.Run `json:"runs"`
	}
	err := h.do(ctx, http.MethodGet, "/pipeline/runs", q, nil, &out)
	return out.Runs, err
}

func (h *httpOps) Executes() bool             { return false }
func (h *httpOps) Busy() bool                 { return false }
func (h *httpOps) Idle() bool                 { return false }
func (h *httpOps) Catalog() *pipeline.Catalog { return nil }
func (h *httpOps) Wake() <-chan struct{}      { return nil }
func (h *httpOps) Close() error {
	h.client.CloseIdleConnections()
	return nil
}

// onlyPipeline asks the service for its pipelines and returns the only one,
// as the local backend defaults --pipeline.
func (h *httpOps) onlyPipeline(ctx context.Context) (string, error) {
	var out pipeline.PipelinesResponse
	if err := h.do(ctx, http.MethodGet, "/pipeline/pipelines", nil, nil, &out); err != nil {
		if errors.Is(err, pipeline.ErrNotFound) {
			return "", fmt.Errorf("--pipeline is required: the service does not list its pipelines (an older version): %w", err)
		}
		return "", err
	}
	names := make([]string, 0, len(out.Pipelines))
	for _, p := range out.Pipelines {
		names = append(names, p.Name)
	}
	if len(names) != 1 {
		return "", usage(fmt.Errorf("--pipeline is required: the service has %d pipelines (%s)", len(names), strings.Join(names, ", ")))
	}
	return names[0], nil
}

// hint401 says what to do about a 401, by its cause.
func (h *httpOps) hint401(msg string) string {
	if h.why401 != nil {
		if hint := h.why401(msg); hint != "" {
			return hint
		}
	}
	if strings.Contains(msg, "audience") {
		return fmt.Sprintf("the token's audience is %s; set --audience to the service's OIDC_AUDIENCE (default its SERVICE_URL, exactly)", h.audience)
	}
	return "the service did not accept the identity token"
}
