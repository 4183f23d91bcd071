package ui

import (
	"context"
	"fmt"
	"net/http"

	"github.com/pipelinehq/pipeline/pipeline"
)

type statsData struct {
	Pipelines []statsPipeline
}

type statsPipeline struct {
	Name      string
	Total     statsRow
	Steps     []statsRow
	Truncated bool
}

// statsRow is one pipeline's or step's figures over 7 and 30 days, with bar
// lengths (per mille of the pipeline's longest p95 over 30 days).
type statsRow struct {
	Name        string
	W7, W30     statsCell
	Bar7, Bar30 int
	P95Bar      int
}

type statsCell struct {
	Runs        int
	SuccessRate float64
	AvgMillis   float64
	P95Millis   float64
}

func (h *Handler) stats(ctx context.Context, r *http.Request, _ access) (string, view, error) {
	now := h.cfg.Now()
	w7, err := h.o.Stats(ctx, "", now.AddDate(0, 0, -7))
	if err != nil {
		return "", view{}, err
	}
	w30, err := h.o.Stats(ctx, "", now.AddDate(0, 0, -30))
	if err != nil {
		return "", view{}, err
	}
	byName7 := map[string]pipeline.PipelineStats{}
	for _, p := range w7 {
		byName7[p.Pipeline] = p
	}
	var d statsData
	for _, p30 := range w30 {
		p7 := byName7[p30.Pipeline]
		sp := statsPipeline{Name: p30.Pipeline, Truncated: p30.Truncated || p7.Truncated,
			Total: statsRow{Name: "whole run",
				W7:  statsCell{Runs: p7.Succeeded + p7.Failed, SuccessRate: p7.SuccessRate, AvgMillis: p7.AvgMillis, P95Millis: p7.P95Millis},
				W30: statsCell{Runs: p30.Succeeded + p30.Failed, SuccessRate: p30.SuccessRate, AvgMillis: p30.AvgMillis, P95Millis: p30.P95Millis}}}
		steps7 := map[string]pipeline.StepStats{}
		for _, s := range p7.Steps {
			steps7[s.Step] = s
		}
		scale := p30.P95Millis
		for _, s := range p30.Steps {
			scale = max(scale, s.P95Millis)
			s7 := steps7[s.Step]
			sp.Steps = append(sp.Steps, statsRow{Name: s.Step,
				W7:  statsCell{Runs: s7.Runs, SuccessRate: s7.SuccessRate, AvgMillis: s7.AvgMillis, P95Millis: s7.P95Millis},
				W30: statsCell{Runs: s.Runs, SuccessRate: s.SuccessRate, AvgMillis: s.AvgMillis, P95Millis: s.P95Millis}})
		}
		bars := func(row *statsRow) {
			if scale <= 0 {
				return
			}
			row.Bar7 = int(1000 * row.W7.AvgMillis / scale)
			row.Bar30 = int(1000 * row.W30.AvgMillis / scale)
			row.P95Bar = int(1000 * row.W30.P95Millis / scale)
		}
		bars(&sp.Total)
		for i := range sp.Steps {
			bars(&sp.Steps[i])
		}
		d.Pipelines = append(d.Pipelines, sp)
	}
	if len(d.Pipelines) == 0 && len(h.o.Catalog().All()) == 0 {
		return "", view{}, fmt.Errorf("%w: no pipeline is loaded", pipeline.ErrNotFound)
	}
	return "stats", view{Title: "Stats", Nav: "stats", Data: d}, nil
}
