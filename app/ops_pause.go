package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// pauseCmd pauses a pipeline's schedule.
type pauseCmd struct {
	Pipeline string `arg:"" help:"The pipeline to pause."`
	Reason   string `help:"Why (recorded in the ledger with who paused)."`
	opsTarget
}

func (c *pauseCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	return c.onPause(ctx, cfg, env, c.Pipeline, c.Reason, true)
}

// unpauseCmd resumes a pipeline's schedule.
type unpauseCmd struct {
	Pipeline string `arg:"" help:"The pipeline to resume."`
	opsTarget
}

func (c *unpauseCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	return c.onPause(ctx, cfg, env, c.Pipeline, "", false)
}

// localIdentity is who pauses from a terminal without --url: the OS user.
func localIdentity() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if host != "" {
		name += "@" + host
	}
	return "cli:" + name
}

func (t *opsTarget) onPause(ctx context.Context, cfg *Config, env *appEnv, name, reason string, pause bool) error {
	if strings.TrimSpace(name) == "" {
		return fail(fmt.Errorf("name the pipeline to %s", map[bool]string{true: "pause", false: "unpause"}[pause]))
	}
	b, err := t.open(ctx, cfg, env, false)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	req := pipeline.PauseRequest{Pipeline: name, Reason: reason, By: localIdentity()}
	op := b.Unpause
	if pause {
		op = b.Pause
	}
	st, err := op(ctx, req)
	if err != nil {
		return fail(err)
	}
	if t.JSON {
		return writeJSON(env.stdout, st)
	}
	printPause(env.stdout, st)
	return nil
}

func printPause(w io.Writer, st pipeline.PauseState) {
	if st.Paused {
		fmt.Fprintf(w, "%s is paused (by %s at %s)", st.Pipeline, st.By, timeOrDash(st.At))
		if st.Reason != "" {
			fmt.Fprintf(w, ": %s", st.Reason)
		}
		fmt.Fprintf(w, "\nscheduled starts are skipped and no missed-start alert fires; an operator can still start a run (pipeline enqueue, POST /pipeline/start); resume with: pipeline unpause %s\n", st.Pipeline)
		return
	}
	fmt.Fprintf(w, "%s runs on its schedule", st.Pipeline)
	if st.ResumedBy != "" {
		fmt.Fprintf(w, " (resumed by %s at %s)", st.ResumedBy, timeOrDash(st.ResumedAt))
	}
	fmt.Fprintln(w)
}

// printScheduleStates prints a line per scheduled pipeline: next fire time,
// pause, and how the latest scheduled date went.
func printScheduleStates(w io.Writer, list []pipeline.ScheduleInfo) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no scheduled pipelines")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "PIPELINE\tSCHEDULE\tTIME ZONE\tNEXT\tPAUSED\tDEADLINE\tLAST DATE\tLAST RUN\tMARKS")
	for _, s := range list {
		paused := "no"
		if s.Pause.Paused {
			paused = "PAUSED by " + s.Pause.By
			if s.Pause.Reason != "" {
				paused += ": " + oneLine(s.Pause.Reason, 40)
			}
		}
		next := "-"
		if !s.Next.IsZero() {
			if loc, err := time.LoadLocation(s.TimeZone); err == nil {
				next = s.Next.In(loc).Format("2006-01-02 15:04 MST")
			}
		}
		last, run, marks := orDash(s.LastDate), orDash(string(s.LastRun)), orDash(strings.Join(s.Marks, ", "))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Pipeline, s.Schedule, s.TimeZone, next, paused, orDash(s.Deadline), last, run, marks)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (d *directOps) Pause(ctx context.Context, req pipeline.PauseRequest) (pipeline.PauseState, error) {
	return d.a.orch.Pause(ctx, req)
}

func (d *directOps) Unpause(ctx context.Context, req pipeline.PauseRequest) (pipeline.PauseState, error) {
	return d.a.orch.Unpause(ctx, req)
}

func (d *directOps) Schedules(ctx context.Context) ([]pipeline.ScheduleInfo, error) {
	return d.a.orch.Schedules(ctx)
}

// The service records its caller's identity as who paused.
func (h *httpOps) Pause(ctx context.Context, req pipeline.PauseRequest) (pipeline.PauseState, error) {
	var out pipeline.PauseState
	err := h.do(ctx, http.MethodPost, "/pipeline/pipelines/"+url.PathEscape(req.Pipeline)+"/pause", nil, map[string]string{"reason": req.Reason}, &out)
	return out, err
}

func (h *httpOps) Unpause(ctx context.Context, req pipeline.PauseRequest) (pipeline.PauseState, error) {
	var out pipeline.PauseState
	err := h.do(ctx, http.MethodPost, "/pipeline/pipelines/"+url.PathEscape(req.Pipeline)+"/unpause", nil, struct{}{}, &out)
	return out, err
}

func (h *httpOps) Schedules(ctx context.Context) ([]pipeline.ScheduleInfo, error) {
	var out struct {
		Schedules []pipeline.ScheduleInfo `json:"schedules"`
	}
	err := h.do(ctx, http.MethodGet, "/pipeline/schedules", nil, nil, &out)
	return out.Schedules, err
}

// statusWithMarks is a run's status with its schedule marks, e.g.
// "succeeded (started 42m0s late, finished 12m0s late)".
func statusWithMarks(r pipeline.Run) string {
	marks := r.Marks
	if len(marks) == 0 {
		marks = pipeline.RunMarks(r)
	}
	if len(marks) == 0 {
		return string(r.Status)
	}
	return fmt.Sprintf("%s (%s)", r.Status, strings.Join(marks, ", "))
}

// state prints the schedules' live state from the ledger.
func (s *schedulesCmd) state(ctx context.Context, cfg *Config, env *appEnv) error {
	b, err := s.open(ctx, cfg, env, false)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	list, err := b.Schedules(ctx)
	if err != nil {
		return fail(err)
	}
	if s.JSON {
		if list == nil {
			list = []pipeline.ScheduleInfo{}
		}
		return writeJSON(env.stdout, map[string]any{"schedules": list})
	}
	printScheduleStates(env.stdout, list)
	return nil
}
