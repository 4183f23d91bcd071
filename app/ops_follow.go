package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/pipelinehq/pipeline/pipeline"
)

// followSpec says which runs a command follows and when it is done.
type followSpec struct {
	runs []string
	// targets are, per run, the steps the command enqueued; a target pending
	// in a live run is still to be delivered, whatever its predecessors.
	targets map[string]map[string]bool
	// scope limits, per run, the steps that count (a run absent: all).
	scope map[string]map[string]bool
	// done says when a run is done for a backend that does not execute
	// (default: the run ended).
	done func(pipeline.Run) bool
	// interval is the polling period.
	interval time.Duration
}

// follow polls the runs until each is done or ctx ends, showing progress. On
// a backend that executes, done means nothing more happens in them: the
// queue is empty, or the ledger shows no work left in their scope. It
// returns the last state of each run.
func follow(ctx context.Context, b opsBackend, spec followSpec, p *progress) ([]pipeline.Run, error) {
	if spec.interval <= 0 {
		spec.interval = 500 * time.Millisecond
		if b.Executes() {
			spec.interval = 50 * time.Millisecond // a local read is cheap
		}
	}
	tick := time.NewTicker(spec.interval)
	defer tick.Stop()
	runs := make([]pipeline.Run, len(spec.runs))
	for {
		all := true
		for i, id := range spec.runs {
			r, err := b.GetRun(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return runs, ctx.Err()
				}
				return runs, err
			}
			runs[i] = r
			if !spec.finished(b, r) {
				all = false
			}
		}
		p.show(runs)
		if (all && !b.Busy()) || b.Idle() {
			// The runs were read before the work settled (a delivery may
			// have ended in between): read them once more for the answer.
			for i, id := range spec.runs {
				if r, err := b.GetRun(ctx, id); err == nil {
					runs[i] = r
				}
			}
			p.show(runs)
			p.finish()
			return runs, nil
		}
		select {
		case <-ctx.Done():
			p.finish()
			return runs, ctx.Err()
		case <-tick.C:
		case <-b.Wake():
		}
	}
}

func (spec followSpec) finished(b opsBackend, r pipeline.Run) bool {
	if !b.Executes() {
		if spec.done != nil {
			return spec.done(r)
		}
		return r.Status.Terminal()
	}
	var def *pipeline.Definition
	if c := b.Catalog(); c != nil {
		def = c.Get(r.Pipeline)
	}
	return !active(r, def, spec.scope[r.ID], spec.targets[r.ID])
}

// active reports whether more will happen in run r on a backend that runs
// what it enqueues: a run not launched yet, a step running or retrying, a
// target step still to be delivered, or a step whose predecessors succeeded
// (its task is on the queue). scope, when not nil, limits the steps counted.
func active(r pipeline.Run, def *pipeline.Definition, scope, targets map[string]bool) bool {
	if r.Status == pipeline.RunPending {
		return true // a backfill run waiting for a slot
	}
	succeeded := map[string]bool{}
	for _, s := range r.Steps {
		if s.Status == pipeline.StepSucceeded {
			succeeded[s.Step] = true
		}
	}
	for _, s := range r.Steps {
		if scope != nil && !scope[s.Step] {
			continue
		}
		switch s.Status {
		case pipeline.StepRunning, pipeline.StepRetrying:
			return true
		case pipeline.StepPending:
			if r.Status.Terminal() {
				continue
			}
			if targets[s.Step] {
				return true
			}
			ready := true
			if def != nil {
				if sd := def.Step(s.Step); sd != nil {
					for _, a := range sd.After {
						ready = ready && succeeded[a]
					}
				}
			}
			if ready {
				return true
			}
		}
	}
	return false
}

// downstream is steps and everything that runs after them in def.
func downstream(def *pipeline.Definition, steps ...string) map[string]bool {
	out := map[string]bool{}
	var walk func(string)
	walk = func(s string) {
		if out[s] {
			return
		}
		out[s] = true
		for _, n := range def.Successors(s) {
			walk(n)
		}
	}
	for _, s := range steps {
		walk(s)
	}
	return out
}

// progress shows runs as they change: on a terminal a block redrawn in
// place, otherwise a line per change.
type progress struct {
	w     io.Writer
	tty   bool
	multi bool // several runs: a line per run (terminal) or the run in each line
	seen  map[string]string
	drawn int
	last  string
}

func newProgress(w io.Writer, multi bool) *progress {
	return &progress{w: w, tty: isTerminal(w), multi: multi, seen: map[string]string{}}
}

// isTerminal reports whether w is a terminal (only an *os.File can be).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stepMark is a step status's symbol.
func stepMark(s pipeline.StepStatus) string {
	switch s {
	case pipeline.StepRunning:
		return "▸"
	case pipeline.StepRetrying:
		return "↻"
	case pipeline.StepWaiting:
		return "…"
	case pipeline.StepSucceeded:
		return "✓"
	case pipeline.StepFailed:
		return "✗"
	case pipeline.StepCancelled:
		return "⊘"
	case pipeline.StepSkipped:
		return "-"
	}
	return "·"
}

// runMark is a run status's symbol.
func runMark(s pipeline.RunStatus) string {
	switch s {
	case pipeline.RunRunning:
		return "▸"
	case pipeline.RunSucceeded:
		return "✓"
	case pipeline.RunFailed:
		return "✗"
	case pipeline.RunCancelled:
		return "⊘"
	}
	return "·"
}

func (p *progress) show(runs []pipeline.Run) {
	if p == nil {
		return
	}
	if p.tty {
		p.redraw(runs)
		return
	}
	ts := time.Now().Format("15:04:05.000")
	for _, r := range runs {
		prefix := ""
		if p.multi {
			prefix = r.ID + "  "
		}
		for _, s := range r.Steps {
			key := r.ID + "/" + s.Step
			state := fmt.Sprintf("%s|%d|%d", s.Status, s.Generation, s.Attempts)
			if p.seen[key] == state {
				continue
			}
			p.seen[key] = state
			fmt.Fprintf(p.w, "%s  %s%s %-16s %-9s  gen %d  attempt %d/%d%s\n", ts, prefix, stepMark(s.Status), s.Step, s.Status, s.Generation, s.Attempts, s.MaxAttempts, stepDetail(s))
		}
		if p.seen[r.ID] != string(r.Status) {
			p.seen[r.ID] = string(r.Status)
			fmt.Fprintf(p.w, "%s  run %s %s%s\n", ts, r.ID, r.Status, runDetail(r))
		}
	}
}

// redraw replaces the block drawn last with the runs' current state.
func (p *progress) redraw(runs []pipeline.Run) {
	var b strings.Builder
	lines := 0
	for _, r := range runs {
		done := 0
		for _, s := range r.Steps {
			if s.Status == pipeline.StepSucceeded {
				done++
			}
		}
		if p.multi {
			fmt.Fprintf(&b, "%s %-28s %-9s %d/%d steps%s\n", runMark(r.Status), r.ID, r.Status, done, len(r.Steps), runDetail(r))
			lines++
			continue
		}
		fmt.Fprintf(&b, "%s %s  %s  %d/%d steps%s\n", runMark(r.Status), r.ID, r.Status, done, len(r.Steps), runDetail(r))
		lines++
		for _, s := range r.Steps {
			fmt.Fprintf(&b, "  %s %-16s %-9s  gen %d  attempt %d/%d%s\n", stepMark(s.Status), s.Step, s.Status, s.Generation, s.Attempts, s.MaxAttempts, stepDetail(s))
			lines++
		}
	}
	if b.String() == p.last {
		return
	}
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dF\x1b[J", p.drawn) // up to the block's start, clear below
	}
	io.WriteString(p.w, b.String())
	p.last, p.drawn = b.String(), lines
}

// finish ends the display; the block stays on the screen.
func (p *progress) finish() {
	if p != nil {
		p.drawn = 0
	}
}

func stepDetail(s pipeline.StepRun) string {
	var parts []string
	if d := s.Duration(); d > 0 {
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	if s.Forced {
		parts = append(parts, "forced")
	}
	if s.Error != "" {
		parts = append(parts, oneLine(s.Error, 80))
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, "  ")
}

func runDetail(r pipeline.Run) string {
	var parts []string
	if !r.FinishedAt.IsZero() {
		parts = append(parts, "in "+r.Duration().Round(time.Millisecond).String())
	}
	if r.Error != "" {
		parts = append(parts, oneLine(r.Error, 80))
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, "  ")
}
