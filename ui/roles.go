package ui

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pipelinehq/pipeline/pipeline"
)

// role is what a caller may do on the dashboard.
type role int

const (
	roleNone role = iota
	roleViewer
	roleOperator
)

// access is the verified caller of a request and its role.
type access struct {
	Caller   pipeline.Caller
	Role     role
	AuthOff  bool
	Operator bool
}

// authorize finds the caller's role: operator if the operators'
// authenticator accepts the request, else viewer if the viewers' does. It
// fails closed with the most telling error (a verified but unlisted caller
// is forbidden rather than unauthorized).
func (h *Handler) authorize(r *http.Request) (access, error) {
	if h.cfg.AuthOff {
		return access{Caller: pipeline.Caller{Email: "anonymous"}, Role: roleOperator, AuthOff: true, Operator: true}, nil
	}
	c, oerr := h.cfg.Operators.Authenticate(r)
	if oerr == nil {
		return access{Caller: c, Role: roleOperator, Operator: true}, nil
	}
	c, verr := h.cfg.Viewers.Authenticate(r)
	if verr == nil {
		return access{Caller: c, Role: roleViewer}, nil
	}
	if errors.Is(oerr, pipeline.ErrForbidden) && !errors.Is(verr, pipeline.ErrForbidden) {
		return access{}, oerr
	}
	return access{}, verr
}

// denyAll refuses every caller: a role with nobody listed is closed.
type denyAll struct{ list string }

func (d denyAll) Authenticate(*http.Request) (pipeline.Caller, error) {
	return pipeline.Caller{}, fmt.Errorf("%w: %s is empty, so this role is closed", pipeline.ErrForbidden, d.list)
}

// Closed returns an authenticator that refuses everyone, naming the empty
// allowlist list in its error.
func Closed(list string) pipeline.Authenticator { return denyAll{list: list} }
