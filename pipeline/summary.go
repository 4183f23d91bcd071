package pipeline

import "time"

// StepSummary is one step of a finished run in the run record's compact
// summary: what a dashboard grid shows without reading the step records.
type StepSummary struct {
	Step        string     `json:"step"`
	Status      StepStatus `json:"status"`
	Attempts    int        `json:"attempts,omitempty"`
	MaxAttempts int        `json:"max_attempts,omitempty"`
	// Micros is the last attempt's duration in microseconds.
	Micros int64 `json:"us,omitempty"`
}

// Duration is the step's last attempt's duration.
func (s StepSummary) Duration() time.Duration { return time.Duration(s.Micros) * time.Microsecond }

// Summarize is the compact summary of steps, in their order.
func Summarize(steps []StepRun) []StepSummary {
	if len(steps) == 0 {
		return nil
	}
	out := make([]StepSummary, len(steps))
	for i, s := range steps {
		out[i] = StepSummary{Step: s.Step, Status: s.Status, Attempts: s.Attempts, MaxAttempts: s.MaxAttempts, Micros: s.Duration().Microseconds()}
	}
	return out
}

// SummaryFinal reports whether a run's summary can stand for its steps: the
// run ended, it has a summary, and no step in it could still run when it was
// written: none running, retrying or waiting, and none pending whose predecessors had
// all succeeded (its task may be queued: a parallel branch may end after its
// run failed). A pending step behind a failed one never runs.
func SummaryFinal(r Run) bool {
	if !r.Status.Terminal() || len(r.Summary) == 0 {
		return false
	}
	status := make(map[string]StepStatus, len(r.Summary))
	for _, s := range r.Summary {
		status[s.Step] = s.Status
	}
	for _, s := range r.Summary {
		switch s.Status {
		case StepRunning, StepRetrying, StepWaiting:
			return false
		case StepPending:
			if r.Graph == nil {
				return false // no graph to tell: read the steps
			}
			gs := r.Graph.Step(s.Step)
			if gs == nil {
				return false
			}
			ready := true
			for _, a := range gs.After {
				if status[a] != StepSucceeded {
					ready = false
				}
			}
			if ready {
				return false
			}
		}
	}
	return true
}
