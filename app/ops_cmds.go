package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// fail turns an operation's error into exit 1 with its message.
func fail(err error) error {
	var ec exitCode
	if errors.As(err, &ec) {
		return err
	}
	return exitCode{code: 1, msg: err.Error()}
}

// usage turns bad input found before anything is done (flags, arguments)
// into exit 2 with its message.
func usage(err error) error {
	var ec exitCode
	if errors.As(err, &ec) {
		return err
	}
	return exitCode{code: ExitUsage, msg: err.Error()}
}

// info is where a command prints what it does: stdout, or stderr when
// stdout carries the JSON result.
func (t *opsTarget) info(env *appEnv) io.Writer {
	if t.JSON {
		return env.stderr
	}
	return env.stdout
}

func checkRunID(id string) error {
	if _, _, err := pipeline.SplitRunID(id); err != nil {
		return fmt.Errorf("run %q is not PIPELINE@KEY (e.g. daily@2026-03-14)", id)
	}
	return nil
}

func checkDate(flag, v string) error {
	if _, err := pipeline.ParseDate(v, time.UTC); err != nil {
		return fmt.Errorf("%s %v", flag, err)
	}
	return nil
}

// waitErr explains a follow that ended early.
func waitErr(b opsBackend, runID string, timeout time.Duration, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		if b.Executes() {
			return fmt.Errorf("%s is still going after --timeout %s; it goes on when the service runs again (pipeline serve, or pipeline watch %s)", runID, timeout, runID)
		}
		return fmt.Errorf("stopped following %s after --timeout %s; it goes on: pipeline watch %s", runID, timeout, runID)
	}
	return fmt.Errorf("following %s: %w", runID, err)
}

// enqueueCmd enqueues one step of a run ad hoc.
type enqueueCmd struct {
	Step     string            `arg:"" help:"The step to enqueue."`
	Date     string            `help:"The run of this date, YYYY-MM-DD (created if it does not exist)."`
	RunID    string            `name:"run" help:"The run, PIPELINE@KEY."`
	Pipeline string            `help:"The pipeline of --date (default: the only one loaded)."`
	Param    map[string]string `short:"p" help:"Parameter k=v of the run --date creates (repeatable)."`
	Only     bool              `help:"Run just this step: do not chain on to its successors."`
	Force    bool              `help:"Run it even if its predecessors have not succeeded or it already succeeded (a new generation)."`
	Wait     bool              `help:"Follow the step to its end (always on the local backend, where nothing else runs it)."`
	Timeout  time.Duration     `default:"30m" help:"Stop following after this long."`
	opsTarget
}

// enqueueOutput is enqueue's JSON.
type enqueueOutput struct {
	Enqueued pipeline.EnqueueResult `json:"enqueued"`
	Run      *pipeline.Run          `json:"run,omitempty"` // when followed
}

func (c *enqueueCmd) request() (pipeline.EnqueueRequest, error) {
	req := pipeline.EnqueueRequest{Step: c.Step, Only: c.Only, Force: c.Force, Params: c.Param}
	if strings.TrimSpace(c.Step) == "" {
		return req, errors.New("the step name is empty")
	}
	switch {
	case c.Date != "" && c.RunID != "":
		return req, errors.New("give --date or --run, not both")
	case c.Date == "" && c.RunID == "":
		return req, errors.New("give the run: --date YYYY-MM-DD (with --pipeline) or --run PIPELINE@KEY")
	case c.RunID != "":
		if err := checkRunID(c.RunID); err != nil {
			return req, err
		}
		if p, _, _ := pipeline.SplitRunID(c.RunID); c.Pipeline != "" && c.Pipeline != p {
			return req, fmt.Errorf("--pipeline %s does not match --run %s", c.Pipeline, c.RunID)
		}
		if len(c.Param) > 0 {
			return req, errors.New("--param sets the parameters of a run that --date creates; an existing run keeps its own")
		}
		req.RunID = c.RunID
	default:
		if err := checkDate("--date", c.Date); err != nil {
			return req, err
		}
		req.Pipeline, req.Date = c.Pipeline, c.Date
	}
	if c.Timeout <= 0 {
		return req, fmt.Errorf("--timeout %s must be positive", c.Timeout)
	}
	return req, nil
}

func (c *enqueueCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	req, err := c.request()
	if err != nil {
		return usage(err)
	}
	b, err := c.open(ctx, cfg, env, true)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	res, err := b.Enqueue(ctx, req)
	if err != nil {
		return fail(err)
	}
	info := c.info(env)
	how := ""
	if c.Force {
		how += ", forced"
	}
	if c.Only {
		how += ", only this step"
	}
	fmt.Fprintf(info, "enqueued %s of %s (generation %d%s): task %s\n", res.Step, res.RunID, res.Generation, how, res.TaskName)
	if res.Created {
		fmt.Fprintf(info, "created run %s\n", res.RunID)
	}
	out := enqueueOutput{Enqueued: res}
	var ferr error
	if b.Executes() || c.Wait {
		spec := followSpec{
			runs:    []string{res.RunID},
			targets: map[string]map[string]bool{res.RunID: {res.Step: true}},
			done: func(r pipeline.Run) bool {
				s, ok := findStep(r, res.Step)
				return !ok || (s.Generation >= res.Generation && s.Status.Terminal()) || s.Generation > res.Generation
			},
		}
		if def := catalogDef(b, res.RunID); def != nil {
			scope := map[string]bool{res.Step: true}
			if !c.Only {
				scope = downstream(def, res.Step)
			}
			spec.scope = map[string]map[string]bool{res.RunID: scope}
		}
		wctx, cancel := context.WithTimeout(ctx, c.Timeout)
		runs, err := follow(wctx, b, spec, newProgress(info, false))
		cancel()
		if err != nil {
			return fail(waitErr(b, res.RunID, c.Timeout, err))
		}
		final := runs[0]
		out.Run = &final
		if !c.JSON {
			fmt.Fprintln(env.stdout)
			printRun(env.stdout, final)
		}
		s, _ := findStep(final, res.Step)
		switch {
		case s.Status != pipeline.StepSucceeded:
			ferr = exitCode{code: 1, msg: fmt.Sprintf("step %s of %s %s: %s", s.Step, final.ID, s.Status, oneLine(s.Error, 300))}
		case final.Status == pipeline.RunFailed:
			ferr = exitCode{code: 1, msg: fmt.Sprintf("run %s failed: %s", final.ID, oneLine(final.Error, 300))}
		}
	}
	if c.JSON {
		if err := writeJSON(env.stdout, out); err != nil {
			return err
		}
	}
	return ferr
}

func findStep(r pipeline.Run, step string) (pipeline.StepRun, bool) {
	for _, s := range r.Steps {
		if s.Step == step {
			return s, true
		}
	}
	return pipeline.StepRun{Step: step}, false
}

func catalogDef(b opsBackend, runID string) *pipeline.Definition {
	c := b.Catalog()
	if c == nil {
		return nil
	}
	p, _, err := pipeline.SplitRunID(runID)
	if err != nil {
		return nil
	}
	return c.Get(p)
}

// statusCmd prints one run and its steps.
type statusCmd struct {
	RunID string `arg:"" name:"run" help:"The run, PIPELINE@KEY."`
	opsTarget
}

func (c *statusCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	return c.onRun(ctx, cfg, env, c.RunID, opsBackend.GetRun, nil)
}

// onRun opens the backend, applies op to one run and prints the run it
// returns (JSON with --json), under header when there is one.
func (t *opsTarget) onRun(ctx context.Context, cfg *Config, env *appEnv, runID string,
	op func(opsBackend, context.Context, string) (pipeline.Run, error), header func() string) error {
	if err := checkRunID(runID); err != nil {
		return usage(err)
	}
	b, err := t.open(ctx, cfg, env, false)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	r, err := op(b, ctx, runID)
	if err != nil {
		return fail(err)
	}
	if t.JSON {
		return writeJSON(env.stdout, r)
	}
	if header != nil {
		fmt.Fprintf(env.stdout, "%s\n\n", header())
	}
	printRun(env.stdout, r)
	return nil
}

// runsCmd lists runs, newest first.
type runsCmd struct {
	Pipeline string `help:"Only this pipeline's runs."`
	Since    string `default:"7d" help:"Runs created since: a duration back (7d, 36h), a date or an RFC 3339 time."`
	Status   string `help:"Only runs in this state: pending, running, succeeded, failed or cancelled."`
	Limit    int    `default:"50" help:"At most this many runs (1..1000)."`
	opsTarget
}

func (c *runsCmd) filter(now time.Time) (pipeline.RunFilter, error) {
	f := pipeline.RunFilter{Pipeline: c.Pipeline, Status: pipeline.RunStatus(c.Status), Limit: c.Limit}
	var errs []error
	switch f.Status {
	case "", pipeline.RunPending, pipeline.RunRunning, pipeline.RunSucceeded, pipeline.RunFailed, pipeline.RunCancelled:
	default:
		errs = append(errs, fmt.Errorf("--status %q is not one of pending, running, succeeded, failed, cancelled", c.Status))
	}
	if c.Since != "" {
		since, err := pipeline.ParseSince(c.Since, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%w", err)) // "--since "800000d" reaches back more than ..."
		}
		f.Since = since
	}
	if c.Limit < 1 || c.Limit > 1000 {
		errs = append(errs, fmt.Errorf("--limit %d must be 1..1000", c.Limit))
	}
	return f, errors.Join(errs...)
}

func (c *runsCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	f, err := c.filter(time.Now())
	if err != nil {
		return usage(err)
	}
	b, err := c.open(ctx, cfg, env, false)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	runs, err := b.ListRuns(ctx, f)
	if err != nil {
		return fail(err)
	}
	if runs == nil {
		runs = []pipeline.Run{}
	}
	if c.JSON {
		return writeJSON(env.stdout, map[string]any{"runs": runs})
	}
	if runs, err = withSteps(ctx, b, runs); err != nil {
		return fail(err)
	}
	printRuns(env.stdout, runs)
	return nil
}

// resumeCmd re-enqueues a run from its failed steps.
type resumeCmd struct {
	RunID   string        `arg:"" name:"run" help:"The run, PIPELINE@KEY."`
	Wait    bool          `help:"Follow the run to its end (always on the local backend, where nothing else runs it)."`
	Timeout time.Duration `default:"30m" help:"Stop following after this long."`
	opsTarget
}

// resumeOutput is resume's JSON.
type resumeOutput struct {
	pipeline.ResumeResult
	Run *pipeline.Run `json:"run,omitempty"` // when followed
}

func (c *resumeCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if err := checkRunID(c.RunID); err != nil {
		return usage(err)
	}
	if c.Timeout <= 0 {
		return usage(fmt.Errorf("--timeout %s must be positive", c.Timeout))
	}
	b, err := c.open(ctx, cfg, env, true)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	res, err := b.Resume(ctx, c.RunID)
	if err != nil {
		return fail(err)
	}
	info := c.info(env)
	targets := map[string]bool{}
	var names []string
	for _, e := range res.Enqueued {
		fmt.Fprintf(info, "enqueued %s of %s (generation %d): task %s\n", e.Step, e.RunID, e.Generation, e.TaskName)
		targets[e.Step] = true
		names = append(names, e.Step)
	}
	out := resumeOutput{ResumeResult: res}
	var ferr error
	if b.Executes() || c.Wait {
		spec := followSpec{runs: []string{res.RunID}, targets: map[string]map[string]bool{res.RunID: targets}}
		if def := catalogDef(b, res.RunID); def != nil {
			spec.scope = map[string]map[string]bool{res.RunID: downstream(def, names...)}
		}
		wctx, cancel := context.WithTimeout(ctx, c.Timeout)
		runs, err := follow(wctx, b, spec, newProgress(info, false))
		cancel()
		if err != nil {
			return fail(waitErr(b, res.RunID, c.Timeout, err))
		}
		final := runs[0]
		out.Run = &final
		if !c.JSON {
			fmt.Fprintln(env.stdout)
			printRun(env.stdout, final)
		}
		if final.Status == pipeline.RunFailed || final.Status == pipeline.RunCancelled {
			ferr = exitCode{code: 1, msg: fmt.Sprintf("run %s %s: %s", final.ID, final.Status, oneLine(final.Error, 300))}
		}
	}
	if c.JSON {
		if err := writeJSON(env.stdout, out); err != nil {
			return err
		}
	}
	return ferr
}

// cancelCmd stops a run: no further step starts.
type cancelCmd struct {
	RunID string `arg:"" name:"run" help:"The run, PIPELINE@KEY."`
	opsTarget
}

func (c *cancelCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	var already bool
	cancel := func(b opsBackend, ctx context.Context, runID string) (pipeline.Run, error) {
		r, err := b.Cancel(ctx, runID)
		if !errors.Is(err, pipeline.ErrConflict) {
			return r, err
		}
		// The run has ended. Cancelled already: what was asked holds, so
		// report it and succeed; succeeded or failed: nothing to cancel.
		cur, gerr := b.GetRun(ctx, runID)
		if gerr != nil || cur.Status != pipeline.RunCancelled {
			return r, err
		}
		already = true
		return cur, nil
	}
	return c.onRun(ctx, cfg, env, c.RunID, cancel, func() string {
		if already {
			return fmt.Sprintf("%s was already cancelled: nothing to do", c.RunID)
		}
		return fmt.Sprintf("cancelled %s: no further step starts (a step running now finishes)", c.RunID)
	})
}

// backfillCmd creates one run per date and runs at most N at once.
type backfillCmd struct {
	From        string            `required:"" help:"First date, YYYY-MM-DD."`
	To          string            `required:"" help:"Last date, YYYY-MM-DD (inclusive)."`
	Pipeline    string            `help:"The pipeline (default: the only one loaded)."`
	MaxParallel int               `default:"1" help:"At most this many of the backfill's runs at once (1..50)."`
	Param       map[string]string `short:"p" help:"Parameter k=v of the runs it creates (repeatable)."`
	Wait        bool              `help:"Follow the runs to their end (always on the local backend, where nothing else runs them)."`
	Timeout     time.Duration     `default:"2h" help:"Stop following after this long."`
	opsTarget
}

// backfillOutput is backfill's JSON.
type backfillOutput struct {
	pipeline.BackfillResult
	Final []pipeline.Run `json:"final,omitempty"` // when followed
}

func (c *backfillCmd) check() error {
	var errs []error
	e1, e2 := checkDate("--from", c.From), checkDate("--to", c.To)
	errs = append(errs, e1, e2)
	if e1 == nil && e2 == nil && c.From > c.To {
		errs = append(errs, fmt.Errorf("--from %s is after --to %s", c.From, c.To))
	}
	if c.MaxParallel < 1 || c.MaxParallel > 50 {
		errs = append(errs, fmt.Errorf("--max-parallel %d must be 1..50", c.MaxParallel))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s must be positive", c.Timeout))
	}
	return errors.Join(errs...)
}

func (c *backfillCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if err := c.check(); err != nil {
		return usage(err)
	}
	b, err := c.open(ctx, cfg, env, true)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	res, err := b.Backfill(ctx, pipeline.BackfillRequest{Pipeline: c.Pipeline, From: c.From, To: c.To, MaxParallel: c.MaxParallel, Params: c.Param})
	if err != nil {
		return fail(err)
	}
	info := c.info(env)
	created := 0
	for _, r := range res.Runs {
		if r.Created {
			created++
		}
	}
	fmt.Fprintf(info, "backfill %s..%s: %d run(s), %d new, %d launched now; at most %d at once\n", c.From, c.To, len(res.Runs), created, len(res.Launched), c.MaxParallel)
	if !c.JSON {
		printBackfill(env.stdout, res)
	}
	out := backfillOutput{BackfillResult: res}
	var ferr error
	if (b.Executes() || c.Wait) && len(res.Runs) > 0 {
		spec := followSpec{}
		for _, r := range res.Runs {
			spec.runs = append(spec.runs, r.RunID)
		}
		wctx, cancel := context.WithTimeout(ctx, c.Timeout)
		runs, err := follow(wctx, b, spec, newProgress(info, true))
		cancel()
		if err != nil {
			return fail(waitErr(b, "the backfill", c.Timeout, err))
		}
		out.Final = runs
		if !c.JSON {
			fmt.Fprintln(env.stdout)
			printRuns(env.stdout, runs)
		}
		var bad []string
		for _, r := range runs {
			if r.Status == pipeline.RunFailed || r.Status == pipeline.RunCancelled {
				bad = append(bad, r.ID+" "+string(r.Status))
			}
		}
		if len(bad) > 0 {
			ferr = exitCode{code: 1, msg: fmt.Sprintf("%d run(s) of the backfill did not succeed: %s", len(bad), strings.Join(bad, ", "))}
		}
	}
	if c.JSON {
		if err := writeJSON(env.stdout, out); err != nil {
			return err
		}
	}
	return ferr
}

// statsCmd prints per pipeline and step: runs, success rate, average and p95.
type statsCmd struct {
	Since    string `default:"7d" help:"Runs created since: a duration back (7d, 36h), a date or an RFC 3339 time."`
	Pipeline string `help:"Only this pipeline."`
	opsTarget
}

func (c *statsCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	since, err := pipeline.ParseSince(c.Since, time.Now())
	if err != nil {
		return usage(fmt.Errorf("--%w", err))
	}
	b, err := c.open(ctx, cfg, env, false)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	res, err := b.Stats(ctx, c.Pipeline, since)
	if err != nil {
		return fail(err)
	}
	if c.JSON {
		return writeJSON(env.stdout, res)
	}
	printStats(env.stdout, res)
	return nil
}

// watchCmd shows a run's progress until it ends.
type watchCmd struct {
	RunID    string        `arg:"" name:"run" help:"The run, PIPELINE@KEY."`
	Interval time.Duration `default:"500ms" help:"How often to read the run."`
	Timeout  time.Duration `default:"0s" help:"Stop watching after this long (0: until the run ends)."`
	opsTarget
}

func (c *watchCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if err := checkRunID(c.RunID); err != nil {
		return usage(err)
	}
	if c.Interval <= 0 || c.Timeout < 0 {
		return usage(fmt.Errorf("--interval %s must be positive and --timeout %s not negative", c.Interval, c.Timeout))
	}
	b, err := c.open(ctx, cfg, env, true)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	if _, err := b.GetRun(ctx, c.RunID); err != nil {
		return fail(err)
	}
	wctx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	info := c.info(env)
	p := newProgress(info, false)
	runs, err := follow(wctx, b, followSpec{runs: []string{c.RunID}, interval: c.Interval}, p)
	if err != nil {
		return fail(waitErr(b, c.RunID, c.Timeout, err))
	}
	final := runs[0]
	if c.JSON {
		if err := writeJSON(env.stdout, final); err != nil {
			return err
		}
	} else if !p.tty {
		fmt.Fprintln(env.stdout)
		printRun(env.stdout, final)
	}
	switch {
	case final.Status == pipeline.RunFailed || final.Status == pipeline.RunCancelled:
		return exitCode{code: 1, msg: fmt.Sprintf("run %s %s: %s", final.ID, final.Status, oneLine(final.Error, 300))}
	case !final.Status.Terminal():
		fmt.Fprintf(info, "run %s is %s but nothing is running or queued for it; continue it with: pipeline resume %s\n", final.ID, final.Status, final.ID)
	}
	return nil
}
