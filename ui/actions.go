package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/pipelinehq/pipeline/pipeline"
)

// actionFunc carries out an operator's action and returns a one-line
// message and the domain's result.
type actionFunc func(ctx context.Context, r *http.Request, caller pipeline.Caller) (string, any, error)

// actionAnswer is the JSON answer of an action.
type actionAnswer struct {
	Message string `json:"message"`
	Result  any    `json:"result,omitempty"`
}

// action checks that the request is same-origin and carries the CSRF header,
// that the caller is an operator, then runs fn and answers JSON.
func (h *Handler) action(fn actionFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if why := checkAction(r); why != "" {
			writeJSONError(w, http.StatusForbidden, why)
			return
		}
		a, err := h.authorize(r)
		if err != nil {
			writeJSONError(w, pipeline.ErrorStatus(err), err.Error())
			return
		}
		if !a.Operator {
			writeJSONError(w, http.StatusForbidden, fmt.Sprintf("%s may read but not act: only ALLOWED_OPERATORS may", a.Caller.Email))
			return
		}
		msg, res, err := fn(r.Context(), r, a.Caller)
		if err != nil {
			code := pipeline.ErrorStatus(err)
			if code >= 500 {
				h.log.ErrorContext(r.Context(), "ui: action failed", "path", r.URL.Path, "error", err.Error())
			}
			writeJSONError(w, code, err.Error())
			return
		}
		h.log.InfoContext(r.Context(), "ui: operator action", "path", r.URL.Path, "caller", a.Caller.Email, "result", msg)
		writeJSON(w, http.StatusOK, actionAnswer{Message: msg, Result: res})
	}
}

// readBody decodes a bounded JSON body strictly into v (empty leaves v).
func readBody(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, pipeline.MaxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading body: %v", pipeline.ErrInvalid, err)
	}
	if len(data) > pipeline.MaxBodyBytes {
		return fmt.Errorf("%w: body exceeds %d bytes", pipeline.ErrTooLarge, pipeline.MaxBodyBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: malformed JSON body: %v", pipeline.ErrInvalid, err)
	}
	return nil
}

func (h *Handler) resume(ctx context.Context, r *http.Request, _ pipeline.Caller) (string, any, error) {
	if err := readBody(r, &struct{}{}); err != nil {
		return "", nil, err
	}
	res, err := h.o.Resume(ctx, r.PathValue("run"))
	if err != nil {
		return "", nil, err
	}
	var names []string
	for _, e := range res.Enqueued {
		names = append(names, e.Step)
	}
	if len(names) == 0 {
		return "Resumed: nothing to re-enqueue.", res, nil
	}
	return "Resumed: enqueued " + strings.Join(names, ", ") + ".", res, nil
}

func (h *Handler) cancel(ctx context.Context, r *http.Request, _ pipeline.Caller) (string, any, error) {
	if err := readBody(r, &struct{}{}); err != nil {
		return "", nil, err
	}
	run, err := h.o.Cancel(ctx, r.PathValue("run"))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("Run %s is %s.", run.ID, run.Status), run, nil
}

// rerunBody is the body of a step re-run: force runs it whatever its
// predecessors' state, in a new generation; only does not chain on.
type rerunBody struct {
	Force bool `json:"force"`
	Only  bool `json:"only"`
}

func (h *Handler) rerun(ctx context.Context, r *http.Request, _ pipeline.Caller) (string, any, error) {
	var b rerunBody
	if err := readBody(r, &b); err != nil {
		return "", nil, err
	}
	runID := r.PathValue("run")
	if _, _, err := pipeline.SplitRunID(runID); err != nil {
		return "", nil, err
	}
	if _, err := h.led.GetRun(ctx, runID); err != nil {
		return "", nil, fmt.Errorf("run %s: %w", runID, err)
	}
	res, err := h.o.Enqueue(ctx, pipeline.EnqueueRequest{RunID: runID, Step: r.PathValue("step"), Force: b.Force, Only: b.Only})
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("Enqueued %s of %s (generation %d).", res.Step, res.RunID, res.Generation), res, nil
}

// startBody is the body of a start: a pipeline's run for a date.
type startBody struct {
	Pipeline string            `json:"pipeline"`
	Date     string            `json:"date"`
	Params   map[string]string `json:"params,omitempty"`
}

func (h *Handler) start(ctx context.Context, r *http.Request, _ pipeline.Caller) (string, any, error) {
	var b startBody
	if err := readBody(r, &b); err != nil {
		return "", nil, err
	}
	if b.Pipeline == "" || b.Date == "" {
		return "", nil, fmt.Errorf("%w: pipeline and date are required", pipeline.ErrInvalid)
	}
	res, err := h.o.Start(ctx, pipeline.StartRequest{Pipeline: b.Pipeline, Date: b.Date, Params: b.Params, Trigger: "ui"})
	if err != nil {
		return "", nil, err
	}
	if !res.Created {
		return fmt.Sprintf("Run %s already exists (%s): nothing started.", res.Run.ID, res.Run.Status), res, nil
	}
	return fmt.Sprintf("Started %s.", res.Run.ID), res, nil
}

func (h *Handler) backfill(ctx context.Context, r *http.Request, _ pipeline.Caller) (string, any, error) {
	var b pipeline.BackfillRequest
	if err := readBody(r, &b); err != nil {
		return "", nil, err
	}
	res, err := h.o.Backfill(ctx, b)
	if err != nil {
		return "", nil, err
	}
	created := 0
	for _, x := range res.Runs {
		if x.Created {
			created++
		}
	}
	return fmt.Sprintf("Backfill: %d runs (%d new), %d launched now.", len(res.Runs), created, len(res.Launched)), res, nil
}
