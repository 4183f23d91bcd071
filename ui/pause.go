package ui

import (
	"context"
	"net/http"

	"github.com/pipelinehq/pipeline/pipeline"
)

// pause records the pipeline's pause with the operator and reason, as
// `pipeline pause` does.
func (h *Handler) pause(ctx context.Context, r *http.Request, caller pipeline.Caller) (string, any, error) {
	var b struct {
		Reason string `json:"reason"`
	}
	if err := readBody(r, &b); err != nil {
		return "", nil, err
	}
	st, err := h.o.Pause(ctx, pipeline.PauseRequest{Pipeline: r.PathValue("pipeline"), Reason: b.Reason, By: caller.Email})
	if err != nil {
		return "", nil, err
	}
	return "Paused " + st.Pipeline + ": scheduled starts are skipped until it is resumed.", st, nil
}

// unpause lifts the pipeline's pause, as `pipeline unpause` does.
func (h *Handler) unpause(ctx context.Context, r *http.Request, caller pipeline.Caller) (string, any, error) {
	if err := readBody(r, &struct{}{}); err != nil {
		return "", nil, err
	}
	st, err := h.o.Unpause(ctx, pipeline.PauseRequest{Pipeline: r.PathValue("pipeline"), By: caller.Email})
	if err != nil {
		return "", nil, err
	}
	return "Resumed " + st.Pipeline + ": it runs on its schedule again.", st, nil
}
