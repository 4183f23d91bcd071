package chaos

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/pipelinehq/pipeline/pipeline"
)

// CrashPointEnv names the environment variable that arms a crash point in
// the chaos-pipeline command: "<point>:<step>:<n>" (see ParseCrashPoint).
// Empty or unset: no crash point.
const CrashPointEnv = "CHAOS_CRASH_POINT"

// Crash points: which committed ledger write a CrashPoint matches.
const (
	// PointStepSucceeded is the write recording a step's success (any
	// generation): its successors are not enqueued yet, and for a step
	// without successors the run is not finished yet.
	PointStepSucceeded = "step-succeeded"
	// PointRerunSucceeded is the write recording the success of a step's
	// re-run (generation 2 or later): its successors, which consumed the
	// previous generation, are not re-run yet.
	PointRerunSucceeded = "rerun-succeeded"
)

// CrashPoint says after which committed ledger write the process dies: the
// Nth distinct write (run, step, generation) matching Point for Step ("*":
// any step).
type CrashPoint struct {
	Point string
	Step  string
	N     int
}

// String is the form ParseCrashPoint reads.
func (p CrashPoint) String() string { return fmt.Sprintf("%s:%s:%d", p.Point, p.Step, p.N) }

// ParseCrashPoint reads "<point>:<step>:<n>", e.g. "step-succeeded:d:5".
func ParseCrashPoint(s string) (CrashPoint, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return CrashPoint{}, fmt.Errorf("chaos: crash point %q: want <point>:<step>:<n>", s)
	}
	p := CrashPoint{Point: parts[0], Step: parts[1]}
	if p.Point != PointStepSucceeded && p.Point != PointRerunSucceeded {
		return CrashPoint{}, fmt.Errorf("chaos: crash point %q: unknown point %q (want %s or %s)", s, p.Point, PointStepSucceeded, PointRerunSucceeded)
	}
	if p.Step == "" {
		return CrashPoint{}, fmt.Errorf("chaos: crash point %q: empty step (\"*\" for any)", s)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 1 {
		return CrashPoint{}, fmt.Errorf("chaos: crash point %q: n must be a positive integer", s)
	}
	p.N = n
	return p, nil
}

// matches says whether the committed step record s is a write of the point.
func (p CrashPoint) matches(s pipeline.StepRun) bool {
	if s.Status != pipeline.StepSucceeded || (p.Step != "*" && s.Step != p.Step) {
		return false
	}
	return p.Point == PointStepSucceeded || s.Generation > 1
}

// Wrap decorates l: once a write matching p has committed, the caller does
// not go on (it waits until the ledger is closed), as if the process had died
// right after that write; at the Nth such write, crash is called (the
// command's crash kills its own process with SIGKILL), so that N runs are in
// the state at one kill. Each match is logged to log. The decorated ledger
// keeps l's optional capabilities (pipeline.Transitioner,
// pipeline.Namespacer), so the service takes the same paths as without it.
func (p CrashPoint) Wrap(l pipeline.Ledger, log io.Writer, crash func()) pipeline.Ledger {
	c := &crashLedger{Ledger: l, p: p, log: log, crash: crash, seen: map[string]bool{}, closed: make(chan struct{})}
	if tr, ok := l.(pipeline.Transitioner); ok {
		return &crashTransitioner{crashLedger: c, tr: tr}
	}
	return c
}

// crashLedger is the decorator Wrap returns.
type crashLedger struct {
	pipeline.Ledger
	p         CrashPoint
	log       io.Writer
	crash     func()
	mu        sync.Mutex
	seen      map[string]bool // run|step|generation matched
	closeOnce sync.Once
	closed    chan struct{}
}

var _ pipeline.Ledger = (*crashLedger)(nil)

// Namespace is the inner ledger's namespace ("" if it has none: the
// orchestrator then uses none either).
func (l *crashLedger) Namespace() string {
	if ns, ok := l.Ledger.(pipeline.Namespacer); ok {
		return ns.Namespace()
	}
	return ""
}

// after is called with each committed step write: at a match it freezes the
// caller or, at the Nth, crashes.
func (l *crashLedger) after(s pipeline.StepRun) {
	if !l.p.matches(s) {
		return
	}
	key := fmt.Sprintf("%s|%s|%d", s.RunID, s.Step, s.Generation)
	l.mu.Lock()
	if l.seen[key] {
		l.mu.Unlock()
		return
	}
	l.seen[key] = true
	n := len(l.seen)
	l.mu.Unlock()
	fmt.Fprintf(l.log, "chaos crash point %s: %s %s generation %d committed (%d of %d)\n", l.p, s.RunID, s.Step, s.Generation, n, l.p.N)
	if n >= l.p.N {
		l.crash()
	}
	<-l.closed
}

func (l *crashLedger) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	stored, err := l.Ledger.UpdateStep(ctx, s)
	if err == nil {
		l.after(stored)
	}
	return stored, err
}

// Close releases the callers held at a match, then closes the inner ledger.
func (l *crashLedger) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Ledger.Close()
}

// crashTransitioner is a crashLedger over a ledger that can also write a
// step and its successors' tasks in one commit.
type crashTransitioner struct {
	*crashLedger
	tr pipeline.Transitioner
}

var _ pipeline.Transitioner = (*crashTransitioner)(nil)

func (l *crashTransitioner) Transition(ctx context.Context, s pipeline.StepRun, tasks []pipeline.Task, handled pipeline.Task) (pipeline.StepRun, error) {
	stored, err := l.tr.Transition(ctx, s, tasks, handled)
	if err == nil {
		l.after(stored)
	}
	return stored, err
}
