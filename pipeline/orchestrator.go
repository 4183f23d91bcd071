package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Orchestrator drives runs through their steps. It is stateless between calls:
// everything it knows is in the Ledger, so any number of service instances can
// handle deliveries for the same run, and a crash at any point is healed by the
// queue's retry of the task being handled.
type Orchestrator struct {
	catalog  *Catalog
	ledger   Ledger
	queue    Queue
	notifier Notifier
	log      *slog.Logger
	now      func() time.Time
	registry *steps.Registry
	graphs   graphCache
	// leaseGrace is added to a step's timeout to form its lease.
	leaseGrace time.Duration
	// namespace is the ledger's namespace, part of every task name.
	namespace string
	jobs      JobControl
	// sender hands events to the notifier in the background.
	sender *sender
	// reserved are the successors' claims this process's hand-offs wrote
	// and their deliveries have not yet taken (HandOff).
	reserved *reservations
}

// Config wires an Orchestrator.
type Config struct {
	Catalog  *Catalog
	Ledger   Ledger
	Queue    Queue
	Notifier Notifier         // optional
	Logger   *slog.Logger     // optional
	Now      func() time.Time // optional
	// LeaseGrace is added to the step timeout to form the lease (default 30s).
	LeaseGrace time.Duration
	// Namespace goes into every task name (see TaskNameIn); default the
	// ledger's own (Namespacer), if it has one.
	Namespace string
	// Registry builds the bodies of steps that a run's recorded definition
	// has and the loaded one does not (or has with other settings): a run
	// keeps its definition across deploys. Optional: without it such steps
	// fail, naming their kind.
	Registry *steps.Registry
	// Jobs pauses and resumes the pipelines' Cloud Scheduler jobs (gcp);
	// optional.
	Jobs JobControl
}

// New returns an Orchestrator.
func New(cfg Config) (*Orchestrator, error) {
	var errs []error
	if cfg.Catalog == nil {
		errs = append(errs, errors.New("orchestrator: no pipeline catalog"))
	}
	if cfg.Ledger == nil {
		errs = append(errs, errors.New("orchestrator: no ledger"))
	}
	if cfg.Queue == nil {
		errs = append(errs, errors.New("orchestrator: no queue"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o := &Orchestrator{
		catalog: cfg.Catalog, ledger: cfg.Ledger, queue: cfg.Queue,
		notifier: cfg.Notifier, log: cfg.Logger, now: cfg.Now, leaseGrace: cfg.LeaseGrace,
		registry: cfg.Registry,
		jobs:     cfg.Jobs,
	}
	if o.notifier == nil {
		o.notifier = Notifiers(nil)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.leaseGrace == 0 {
		o.leaseGrace = 30 * time.Second
	}
	o.sender = newSender(o.callNotifier, o.log)
	o.reserved = newReservations(maxReservations)
	o.namespace = cfg.Namespace
	if ns, ok := cfg.Ledger.(Namespacer); ok && o.namespace == "" {
		o.namespace = ns.Namespace()
	}
	return o, nil
}

// Catalog returns the loaded pipelines.
func (o *Orchestrator) Catalog() *Catalog { return o.catalog }

// Ledger returns the ledger the orchestrator writes to.
func (o *Orchestrator) Ledger() Ledger { return o.ledger }

// StartRequest asks for the run of a pipeline for a date (or key).
type StartRequest struct {
	Pipeline string            `json:"pipeline"`
	Date     string            `json:"date,omitempty"` // YYYY-MM-DD in the pipeline's time zone
	Key      string            `json:"key,omitempty"`  // run key; default the date
	Params   map[string]string `json:"params,omitempty"`
	// ScheduleTime is Cloud Scheduler's X-CloudScheduler-ScheduleTime; it sets
	// the date when Date is empty. Zero means now.
	ScheduleTime time.Time `json:"-"`
	Trigger      string    `json:"-"`
}

// StartResult reports the run that a start created or found.
type StartResult struct {
	Run     Run  `json:"run"`
	Created bool `json:"created"`
}

// maxParams bounds the parameters of a run so tasks stay far below queue limits.
const (
	maxParams        = 64
	maxParamKeyLen   = 64
	maxParamValueLen = 1024
)

// Start creates the run of req.Pipeline for its key, if it does not exist, and
// enqueues its root steps. Starting a run that exists changes nothing (beyond
// healing a start that crashed before its roots were enqueued) and reports it.
func (o *Orchestrator) Start(ctx context.Context, req StartRequest) (StartResult, error) {
	var (
		def     *Definition
		stored  Run
		created bool
		err     error
	)
	if l, ok := o.ledger.(Launcher); ok {
		def, stored, created, err = o.startLaunched(ctx, l, req)
	} else {
		def, stored, created, err = o.create(ctx, req, RunPending)
	}
	if err != nil {
		return StartResult{}, err
	}
	if created {
		o.log.InfoContext(ctx, "run created", "run", stored.ID, "pipeline", def.Name, "date", stored.Date, "trigger", req.Trigger)
		if stored.Status == RunRunning { // launched with its creation
			o.notify(ctx, Event{Kind: EventRunStarted, Run: stored})
		}
	}
	if stored.Status == RunPending {
		stored, err = o.launch(ctx, stored)
		if err != nil {
			return StartResult{}, err
		}
	}
	return StartResult{Run: stored, Created: created}, nil
}

// create validates req and creates its run (with status) and steps, or finds
// the existing run.
func (o *Orchestrator) create(ctx context.Context, req StartRequest, status RunStatus) (*Definition, Run, bool, error) {
	def, run, srs, err := o.newRun(req, status)
	if err != nil {
		return nil, Run{}, false, err
	}
	stored, created, err := o.ledger.CreateRun(ctx, run, srs)
	if err != nil {
		return nil, Run{}, false, fmt.Errorf("create %s: %w", run.ID, err)
	}
	return def, stored, created, nil
}

// newRun validates req and builds its run (with status) and steps.
func (o *Orchestrator) newRun(req StartRequest, status RunStatus) (*Definition, Run, []StepRun, error) {
	def, err := o.pipelineFor(req.Pipeline)
	if err != nil {
		return nil, Run{}, nil, err
	}
	date, err := runDate(req, def.Location, o.now())
	if err != nil {
		return nil, Run{}, nil, err
	}
	key := req.Key
	if key == "" {
		key = date
	}
	if !ValidKey(key) {
		return nil, Run{}, nil, fmt.Errorf("%w: key %q must match %s", ErrInvalid, key, keyPattern)
	}
	if err := validParams(req.Params); err != nil {
		return nil, Run{}, nil, err
	}
	params := map[string]string{}
	for k, v := range def.Params {
		params[k] = v
	}
	for k, v := range req.Params {
		params[k] = v
	}
	now := o.now().UTC()
	g := def.Graph()
	run := Run{
		ID: RunID(def.Name, key), Pipeline: def.Name, Key: key, Date: date, Params: params,
		Status: status, Trigger: req.Trigger, CreatedAt: now, UpdatedAt: now,
		DefinitionVersion: g.Version, Graph: g,
	}
	srs := make([]StepRun, len(g.Steps))
	input := runInputDigest(date, params)
	for i, s := range g.Steps {
		srs[i] = StepRun{RunID: run.ID, Step: s.Name, Status: StepPending, Generation: 1, MaxAttempts: s.MaxAttempts, UpdatedAt: now,
			RunInput: input}
	}
	return def, run, srs, nil
}

// launch enqueues the roots (in the run's graph) of a pending run and marks
// it running.
func (o *Orchestrator) launch(ctx context.Context, r Run) (Run, error) {
	rg, err := o.graphForRun(r)
	if err != nil {
		return r, fmt.Errorf("launch %s: %w", r.ID, err)
	}
	roots := rg.Roots()
	current, err := o.ledger.GetSteps(ctx, r.ID, roots...)
	if err != nil {
		return r, fmt.Errorf("launch %s: %w", r.ID, err)
	}
	for _, s := range current {
		if err := o.enqueue(ctx, rg, r.ID, r.Date, r.Params, s.Step, s.Generation); err != nil {
			return r, err
		}
	}
	stored, wrote, err := o.updateRun(ctx, r, func(x *Run) bool {
		if x.Status != RunPending {
			return false // a concurrent start launched it
		}
		x.Status, x.UpdatedAt = RunRunning, o.now().UTC()
		x.StartedAt = x.UpdatedAt
		return true
	})
	if err != nil {
		return r, fmt.Errorf("launch %s: %w", r.ID, err)
	}
	stored.Steps = nil
	if wrote {
		o.notify(ctx, Event{Kind: EventRunStarted, Run: stored})
	}
	return stored, nil
}

// updateRun writes change(r) by compare-and-swap, re-reading the run and
// applying change again on a conflict. change returns false when there is
// nothing (more) to write; wrote says whether a write happened. The run
// returned is the one written or last read, with the steps of the last read.
func (o *Orchestrator) updateRun(ctx context.Context, r Run, change func(*Run) bool) (Run, bool, error) {
	for range 5 {
		if !change(&r) {
			return r, false, nil
		}
		steps := r.Steps
		r.Steps = nil
		stored, err := o.ledger.UpdateRun(ctx, r)
		if err == nil {
			stored.Steps = steps
			return stored, true, nil
		}
		if !errors.Is(err, ErrConflict) {
			return r, false, err
		}
		if r, err = o.ledger.GetRun(ctx, r.ID); err != nil {
			return r, false, err
		}
	}
	return r, false, fmt.Errorf("%w: run record %s keeps changing", ErrConflict, r.ID)
}

func (o *Orchestrator) pipelineFor(name string) (*Definition, error) {
	if name == "" {
		if all := o.catalog.All(); len(all) == 1 {
			return all[0], nil
		}
		return nil, fmt.Errorf("%w: pipeline is required (loaded: %v)", ErrInvalid, o.names())
	}
	return o.catalog.Lookup(name)
}

func (o *Orchestrator) names() []string {
	var out []string
	for _, d := range o.catalog.All() {
		out = append(out, d.Name)
	}
	return out
}

func runDate(req StartRequest, loc *time.Location, now time.Time) (string, error) {
	if req.Date != "" {
		t, err := ParseDate(req.Date, loc)
		if err != nil {
			return "", fmt.Errorf("%w: date %v", ErrInvalid, err)
		}
		return t.Format(time.DateOnly), nil
	}
	if !req.ScheduleTime.IsZero() {
		return req.ScheduleTime.In(loc).Format(time.DateOnly), nil
	}
	return now.In(loc).Format(time.DateOnly), nil
}

func validParams(p map[string]string) error {
	if len(p) > maxParams {
		return fmt.Errorf("%w: %d params, at most %d", ErrInvalid, len(p), maxParams)
	}
	for k, v := range p {
		if k == "" || len(k) > maxParamKeyLen {
			return fmt.Errorf("%w: param name %q must be 1..%d bytes", ErrInvalid, k, maxParamKeyLen)
		}
		if len(v) > maxParamValueLen {
			return fmt.Errorf("%w: param %q is %d bytes, at most %d", ErrInvalid, k, len(v), maxParamValueLen)
		}
	}
	return nil
}

// task is the queue task of one step (of the run's graph rg) of a run in a
// generation.
func (o *Orchestrator) task(rg *runGraph, runID, date string, params map[string]string, step string, gen int) Task {
	timeout := rg.requestTimeout(step)
	return Task{
		Name: o.TaskName(runID, step, gen),
		Payload: TaskPayload{RunID: runID, Step: step, Generation: gen, Date: date, Params: params,
			DefinitionVersion: rg.Version},
		Deadline: timeout + o.leaseGrace/2,
	}
}

// enqueue puts the task of one step of a run on the queue (idempotent by name).
func (o *Orchestrator) enqueue(ctx context.Context, rg *runGraph, runID, date string, params map[string]string, step string, gen int) error {
	t := o.task(rg, runID, date, params, step, gen)
	if err := o.queue.Enqueue(ctx, t); err != nil {
		return fmt.Errorf("enqueue %s of %s (generation %d): %w", step, runID, gen, err)
	}
	return nil
}

// notifyTimeout bounds a notifier; notifiers must hand slow work off anyway.
const notifyTimeout = 5 * time.Second

// notify hands a committed event to the background sender: no step waits on
// a notifier (invariant 6). An event the sender cannot take (shutting down,
// backlog full) is logged and dropped.
func (o *Orchestrator) notify(ctx context.Context, e Event) {
	if !Wants(o.notifier, e.Kind) {
		return // no notifier takes this kind: nothing to queue
	}
	if !o.sender.send(sendJob{ctx: unbound(ctx), e: e}) {
		o.log.WarnContext(ctx, "notification dropped: the sender is closed or full", "run", e.Run.ID, "event", string(e.Kind))
	}
}

// unbound keeps ctx's values (trace, logger) for work done after its request
// ended, and nothing of the request itself.
func unbound(ctx context.Context) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), requestKey{}, context.Background())
}

// notifyNow hands a committed event to the notifier and waits for it: the
// sweeper's sends, which record the outcome (alerts, owed finals). A
// notifier's error, panic or cancellation is returned, logged.
func (o *Orchestrator) notifyNow(ctx context.Context, e Event) (err error) {
	defer func() {
		if err != nil {
			o.log.WarnContext(ctx, "notification failed", "run", e.Run.ID, "event", string(e.Kind), "error", err.Error())
		}
	}()
	if shuttingDown(ctx) {
		// The process is about to exit: a final notification stays owed in
		// the ledger and is sent by the next instance's sweeper.
		return fmt.Errorf("not sent: %w", ErrShutdown)
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	// A shutdown while the notifier waits (an unreachable Discord) ends the
	// wait: the process must exit within Cloud Run's grace.
	stop := context.AfterFunc(requestOf(ctx), func() {
		if shuttingDown(ctx) {
			cancel()
		}
	})
	defer stop()
	return o.callNotifier(nctx, e)
}

// callNotifier calls the notifier, turning a panic into an error.
func (o *Orchestrator) callNotifier(ctx context.Context, e Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("notifier panicked: %v", r)
		}
	}()
	return o.notifier.Notify(ctx, e)
}

// Flush waits until every notification handed to the background sender so
// far has been sent (or given up), or ctx ends. Tests and commands that exit
// after a run use it.
func (o *Orchestrator) Flush(ctx context.Context) error { return o.sender.flush(ctx) }

// Close gives back the successors' claims this process handed off and has
// not run (their steps are claimable at once, the attempts not counted),
// stops taking notifications and waits, until ctx ends, for those still
// queued; then it ends the calls in flight and gives up the rest. A final
// notification given up stays owed in the ledger (Run.Notify), and the
// sweeper sends it after owedGrace.
func (o *Orchestrator) Close(ctx context.Context) error {
	rerr := o.releaseReserved(ctx)
	return errors.Join(rerr, o.sender.close(ctx))
}
