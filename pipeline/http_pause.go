package pipeline

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// scheduleRoutes adds the pause routes (operators) and the schedules listing
// (viewers and operators).
func (s *server) scheduleRoutes(g *echo.Group, operators, either echo.MiddlewareFunc) {
	g.POST("/pipelines/:pipeline/pause", s.pause, operators)
	g.POST("/pipelines/:pipeline/unpause", s.unpause, operators)
	g.GET("/schedules", s.schedules, either)
}

// pauseBody is the body of the pause routes.
type pauseBody struct {
	Reason string `json:"reason,omitempty"`
}

func callerEmail(c *echo.Context) string {
	if caller, ok := c.Get("caller").(Caller); ok && caller.Email != "" {
		return caller.Email
	}
	return "anonymous"
}

func (s *server) pause(c *echo.Context) error {
	var b pauseBody
	if err := readJSON(c, &b, true); err != nil {
		return err
	}
	st, err := s.o.Pause(c.Request().Context(), PauseRequest{Pipeline: c.Param("pipeline"), Reason: b.Reason, By: callerEmail(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *server) unpause(c *echo.Context) error {
	if err := readJSON(c, &struct{}{}, true); err != nil {
		return err
	}
	st, err := s.o.Unpause(c.Request().Context(), PauseRequest{Pipeline: c.Param("pipeline"), By: callerEmail(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *server) schedules(c *echo.Context) error {
	out, err := s.o.Schedules(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"schedules": out})
}

// skippedResponse is the answer of a scheduler's start of a paused pipeline.
type skippedResponse struct {
	Skipped  string     `json:"skipped"`
	Pipeline string     `json:"pipeline"`
	Pause    PauseState `json:"pause"`
}

// skipPaused answers a scheduler's start of a paused pipeline with 200
// "skipped: paused" (so that Cloud Scheduler does not retry) and reports
// true; it creates nothing. Operators' starts are never skipped.
func (s *server) skipPaused(c *echo.Context, req StartRequest) (bool, error) {
	if req.Trigger != "scheduler" {
		return false, nil
	}
	st, err := s.o.PauseState(c.Request().Context(), req.Pipeline)
	if err != nil || !st.Paused {
		return false, err
	}
	s.log.InfoContext(c.Request().Context(), "scheduled start skipped: pipeline paused", "pipeline", st.Pipeline, "paused_by", st.By, "reason", st.Reason)
	return true, c.JSON(http.StatusOK, skippedResponse{Skipped: "paused", Pipeline: st.Pipeline, Pause: st})
}
