package pipeline

// StepSummary is one step of a finished run in the run record's compact
// summary: what a dashboard grid shows without reading the step records.
type StepSummary struct {
	Step        string     `json:"step"`
	Status      StepStatus `json:"status"`
	Attempts    int        `json:"attempts,omitempty"`
	MaxAttempts int        `json:"max_attempts,omitempty"`
	// Millis is the last attempt's duration in milliseconds.
	Millis int64 `json:"ms,omitempty"`
}

// Summarize is the compact summary of steps, in their order.
func Summarize(steps []StepRun) []StepSummary {
	if len(steps) == 0 {
		return nil
	}
	out := make([]StepSummary, len(steps))
	for i, s := range steps {
		out[i] = StepSummary{Step: s.Step, Status: s.Status, Attempts: s.Attempts, MaxAttempts: s.MaxAttempts, Millis: s.Duration().Milliseconds()}
	}
	return out
}

// SummaryFinal reports whether a run's summary can stand for its steps: the
// run ended, it has a summary, and no step in it was still in flight when
// it was written (a parallel branch may end after its run failed).
func SummaryFinal(r Run) bool {
	if !r.Status.Terminal() || len(r.Summary) == 0 {
		return false
	}
	for _, s := range r.Summary {
		if s.Status == StepRunning || s.Status == StepRetrying {
			return false
		}
	}
	return true
}
