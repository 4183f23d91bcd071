package pipeline

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// maxStatsRuns bounds the runs a stats query reads.
const maxStatsRuns = 1000

// StepStats are one step's figures over the runs of a period.
type StepStats struct {
	Step        string  `json:"step"`
	Runs        int     `json:"runs"` // ended with a final state
	Succeeded   int     `json:"succeeded"`
	Failed      int     `json:"failed"`
	SuccessRate float64 `json:"success_rate"`
	AvgMillis   float64 `json:"avg_ms"`
	P95Millis   float64 `json:"p95_ms"`
	AvgAttempts float64 `json:"avg_attempts"`
}

// PipelineStats are one pipeline's figures over the runs of a period.
type PipelineStats struct {
	Pipeline    string      `json:"pipeline"`
	Runs        int         `json:"runs"`
	Succeeded   int         `json:"succeeded"`
	Failed      int         `json:"failed"`
	Cancelled   int         `json:"cancelled"`
	Unfinished  int         `json:"unfinished"`
	SuccessRate float64     `json:"success_rate"` // succeeded / (succeeded + failed)
	AvgMillis   float64     `json:"avg_ms"`       // of Run.WorkDuration, over succeeded and failed runs
	P95Millis   float64     `json:"p95_ms"`
	Steps       []StepStats `json:"steps"`
	Truncated   bool        `json:"truncated,omitempty"` // more runs than were read
}

// Stats computes per pipeline and step: runs, success rate, average and p95
// duration, over runs created since since (at most maxStatsRuns of them).
// Durations are attempt durations: a step's is its last attempt's, a run's
// is the sum of its steps' (Run.WorkDuration) over runs that succeeded or
// failed, so queue waits and re-runs long after a run neither stretch nor
// skew them.
func (o *Orchestrator) Stats(ctx context.Context, pipeline string, since time.Time) ([]PipelineStats, error) {
	runs, err := o.ledger.ListRuns(ctx, RunFilter{Pipeline: pipeline, Since: since, Limit: maxStatsRuns})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	type stepAcc struct {
		StepStats
		durs     []float64
		attempts int
	}
	type acc struct {
		PipelineStats
		durs  []float64
		steps map[string]*stepAcc
		order []string
	}
	byPipe := map[string]*acc{}
	var names []string
	for _, summary := range runs {
		r, err := o.ledger.GetRun(ctx, summary.ID)
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		a := byPipe[r.Pipeline]
		if a == nil {
			a = &acc{PipelineStats: PipelineStats{Pipeline: r.Pipeline}, steps: map[string]*stepAcc{}}
			byPipe[r.Pipeline] = a
			names = append(names, r.Pipeline)
		}
		a.Runs++
		switch r.Status {
		case RunSucceeded:
			a.Succeeded++
		case RunFailed:
			a.Failed++
		case RunCancelled:
			a.Cancelled++
		default:
			a.Unfinished++
		}
		if r.Status == RunSucceeded || r.Status == RunFailed {
			if d := r.WorkDuration(); d > 0 {
				a.durs = append(a.durs, float64(d.Microseconds())/1000)
			}
		}
		for _, s := range r.Steps {
			sa := a.steps[s.Step]
			if sa == nil {
				sa = &stepAcc{StepStats: StepStats{Step: s.Step}}
				a.steps[s.Step] = sa
				a.order = append(a.order, s.Step)
			}
			switch s.Status {
			case StepSucceeded:
				sa.Succeeded++
			case StepFailed:
				sa.Failed++
			default:
				continue
			}
			sa.Runs++
			sa.attempts += s.Attempts
			if d := s.Duration(); d > 0 {
				sa.durs = append(sa.durs, float64(d.Microseconds())/1000)
			}
		}
	}
	out := make([]PipelineStats, 0, len(names))
	sort.Strings(names)
	for _, n := range names {
		a := byPipe[n]
		a.SuccessRate = rate(a.Succeeded, a.Failed)
		a.AvgMillis, a.P95Millis = avgP95(a.durs)
		a.Truncated = len(runs) == maxStatsRuns
		a.Steps = []StepStats{}
		for _, sn := range a.order {
			sa := a.steps[sn]
			sa.SuccessRate = rate(sa.Succeeded, sa.Failed)
			sa.AvgMillis, sa.P95Millis = avgP95(sa.durs)
			if sa.Runs > 0 {
				sa.AvgAttempts = float64(sa.attempts) / float64(sa.Runs)
			}
			a.Steps = append(a.Steps, sa.StepStats)
		}
		out = append(out, a.PipelineStats)
	}
	return out, nil
}

func rate(ok, bad int) float64 {
	if ok+bad == 0 {
		return 0
	}
	return float64(ok) / float64(ok+bad)
}

// avgP95 returns the mean and the nearest-rank 95th percentile.
func avgP95(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	sort.Float64s(xs)
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	rank := (95*len(xs) + 99) / 100 // ceil(0.95 n)
	return sum / float64(len(xs)), xs[rank-1]
}
