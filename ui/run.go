package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

type runData struct {
	Run      pipeline.Run
	Loc      *time.Location
	Duration time.Duration
	Steps    []runStep
	Graph    graph
	Timeline timeline
	Start    startData
	Project  string
}

// startData fills the start and backfill forms.
type startData struct {
	Pipelines []string
	Selected  string
	Today     string
}

// startFor is the start forms' data, with pipeline selected (or the first).
func (h *Handler) startFor(selected string) startData {
	d := startData{Selected: selected}
	loc := time.UTC
	for _, p := range h.o.Catalog().All() {
		d.Pipelines = append(d.Pipelines, p.Name)
		if p.Name == selected && p.Location != nil {
			loc = p.Location
		}
	}
	d.Today = h.cfg.Now().In(loc).Format(time.DateOnly)
	return d
}

type runStep struct {
	pipeline.StepRun
	Cell     string
	After    []string
	Output   string // indented JSON
	TaskName string
	LogsURL  string
}

func (h *Handler) run(ctx context.Context, r *http.Request, _ access) (string, view, error) {
	id := r.PathValue("run")
	pipe, _, err := pipeline.SplitRunID(id)
	if err != nil {
		return "", view{}, err
	}
	run, err := h.led.GetRun(ctx, id)
	if err != nil {
		return "", view{}, fmt.Errorf("run %s: %w", id, err)
	}
	def := h.o.Catalog().Get(pipe)
	loc := time.UTC
	if def != nil && def.Location != nil {
		loc = def.Location
	}
	d := runData{Run: run, Loc: loc, Duration: runDuration(run), Project: h.cfg.Project, Start: h.startFor(pipe)}
	// The run's own recorded graph (what its gate and re-runs follow), else
	// the definition loaded now (runs recorded before runs kept their graph).
	after := map[string][]string{}
	switch {
	case run.Graph != nil:
		for _, s := range run.Graph.Steps {
			after[s.Name] = s.After
		}
		if l := run.Graph.Location(); l != nil {
			d.Loc = l
		}
	case def != nil:
		for _, s := range def.Steps {
			after[s.Name] = s.After
		}
	}
	for _, s := range run.Steps {
		rs := runStep{StepRun: s, Cell: cellStatus(run.Status, s.Status), After: after[s.Step],
			TaskName: pipeline.TaskName(run.ID, s.Step, s.Generation), LogsURL: logsURL(h.cfg.Project, run.ID, s.Step)}
		if len(s.Output) > 0 {
			var buf bytes.Buffer
			if json.Indent(&buf, s.Output, "", "  ") == nil {
				rs.Output = buf.String()
			} else {
				rs.Output = string(s.Output)
			}
		}
		d.Steps = append(d.Steps, rs)
	}
	d.Graph = layoutGraph(d.Steps)
	d.Timeline = buildTimeline(run, d.Steps, d.Loc)
	v := view{Title: run.ID, Nav: "grid", Data: d}
	if !run.Status.Terminal() {
		v.Live = r.URL.Path
	}
	return "run", v, nil
}

// logsURL links to the step's logs in Cloud Logging, or "" without a project.
func logsURL(project, runID, step string) string {
	if project == "" {
		return ""
	}
	q := fmt.Sprintf("jsonPayload.run=%q\njsonPayload.step=%q", runID, step)
	return "https://console.cloud.google.com/logs/query;query=" + url.PathEscape(q) + "?project=" + url.QueryEscape(project)
}
