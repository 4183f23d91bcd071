package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Backfill limits.
const (
	maxBackfillDays     = 366
	maxBackfillParallel = 50
	// noteMaxParallel is the Run.Notes key holding a backfill run's limit.
	noteMaxParallel = "backfill.max_parallel"
	// stalePending is how long a non-backfill run may stay pending (its start
	// crashed before the roots were enqueued) before the sweeper launches it.
	stalePending = time.Minute
	// launchPage is the page size when launching the pending runs of one
	// pipeline.
	launchPage = 10
)

// BackfillRequest asks for one run per date from From to To (inclusive).
type BackfillRequest struct {
	Pipeline    string            `json:"pipeline"`
	From        string            `json:"from"`
	To          string            `json:"to"`
	MaxParallel int               `json:"max_parallel,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
}

// BackfillRun is one run of a backfill.
type BackfillRun struct {
	RunID   string    `json:"run_id"`
	Date    string    `json:"date"`
	Status  RunStatus `json:"status"`
	Created bool      `json:"created"`
}

// BackfillResult lists a backfill's runs, oldest first.
type BackfillResult struct {
	Runs     []BackfillRun `json:"runs"`
	Launched []string      `json:"launched"`
}

// Backfill creates one run per date (pending) and launches at most
// MaxParallel of them at once; the rest start as earlier ones end. Repeating
// it creates nothing new: existing runs are reported as they are.
func (o *Orchestrator) Backfill(ctx context.Context, req BackfillRequest) (BackfillResult, error) {
	def, err := o.pipelineFor(req.Pipeline)
	if err != nil {
		return BackfillResult{}, err
	}
	from, err1 := time.ParseInLocation(time.DateOnly, req.From, def.Location)
	to, err2 := time.ParseInLocation(time.DateOnly, req.To, def.Location)
	var errs []error
	if err1 != nil {
		errs = append(errs, fmt.Errorf("%w: from %q is not YYYY-MM-DD", ErrInvalid, req.From))
	}
	if err2 != nil {
		errs = append(errs, fmt.Errorf("%w: to %q is not YYYY-MM-DD", ErrInvalid, req.To))
	}
	if err1 == nil && err2 == nil {
		switch days := int(to.Sub(from).Hours()/24) + 1; {
		case days < 1:
			errs = append(errs, fmt.Errorf("%w: from %s is after to %s", ErrInvalid, req.From, req.To))
		case days > maxBackfillDays:
			errs = append(errs, fmt.Errorf("%w: %d days; a backfill covers at most %d", ErrInvalid, days, maxBackfillDays))
		}
	}
	if req.MaxParallel == 0 {
		req.MaxParallel = 1
	}
	if req.MaxParallel < 1 || req.MaxParallel > maxBackfillParallel {
		errs = append(errs, fmt.Errorf("%w: max_parallel %d must be 1..%d", ErrInvalid, req.MaxParallel, maxBackfillParallel))
	}
	if err := errors.Join(errs...); err != nil {
		return BackfillResult{}, err
	}
	res := BackfillResult{Runs: []BackfillRun{}}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		date := d.Format(time.DateOnly)
		_, r, created, err := o.create(ctx, StartRequest{Pipeline: def.Name, Date: date, Params: req.Params, Trigger: "backfill"}, RunPending)
		if err != nil {
			return res, err
		}
		if created {
			r.Notes = map[string]string{noteMaxParallel: strconv.Itoa(req.MaxParallel)}
			if r, err = o.ledger.UpdateRun(ctx, r); err != nil {
				return res, fmt.Errorf("backfill %s: %w", r.ID, err)
			}
		}
		res.Runs = append(res.Runs, BackfillRun{RunID: r.ID, Date: date, Status: r.Status, Created: created})
	}
	res.Launched, err = o.launchPendingOf(ctx, def.Name)
	if res.Launched == nil {
		res.Launched = []string{}
	}
	launched := map[string]bool{}
	for _, id := range res.Launched {
		launched[id] = true
	}
	for i := range res.Runs {
		if launched[res.Runs[i].RunID] {
			res.Runs[i].Status = RunRunning
		}
	}
	return res, err
}

// launchPending starts pending runs of every pipeline (the sweeper): see
// launchPendingOf.
func (o *Orchestrator) launchPending(ctx context.Context) ([]string, error) {
	return o.launchPendingOf(ctx, "")
}

// launchPendingOf starts pending runs of pipeline pipe (every pipeline when
// empty), oldest created first: backfill runs while fewer than their
// max_parallel backfill runs of the pipeline are running, and other runs
// whose start crashed before their roots were enqueued. A backfill creates
// its runs oldest date first, so its dates start in order. It pages through
// the pending runs (at most reconcileMaxPages pages of reconcileMaxRuns), so
// it reaches pending runs behind any number of newer ones; for one pipeline
// it stops as soon as the pipeline has no backfill slot left.
func (o *Orchestrator) launchPendingOf(ctx context.Context, pipe string) ([]string, error) {
	capacity := map[string]int{}
	var launched []string
	now := o.now()
	var failed error
	f := RunFilter{Pipeline: pipe, Status: RunPending, OldestFirst: true}
	if pipe != "" {
		// A run of the pipeline ended: usually one slot to fill, so small
		// pages (each document read is billed on Firestore).
		f.Limit = launchPage
	}
	err := o.pages(ctx, f, func(r Run) bool {
		def := o.catalog.Get(r.Pipeline)
		if def == nil {
			return true
		}
		if r.Trigger != "backfill" {
			if now.Sub(r.CreatedAt) < stalePending {
				return true // its own start is still enqueuing the roots
			}
		} else {
			left, seen := capacity[r.Pipeline]
			if !seen {
				var err error
				if left, err = o.backfillSlots(ctx, r); err != nil {
					failed = err
					return false
				}
			}
			if left <= 0 {
				capacity[r.Pipeline] = 0
				return pipe == "" // one pipeline: nothing more can start
			}
			capacity[r.Pipeline] = left - 1
		}
		if _, err := o.launch(ctx, r); err != nil {
			failed = err
			return false
		}
		launched = append(launched, r.ID)
		return true
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return launched, fmt.Errorf("launch pending: %w", err)
	}
	return launched, nil
}

// backfillSlots is how many more backfill runs of r's pipeline may start now:
// r's max_parallel less the backfill runs of the pipeline running.
func (o *Orchestrator) backfillSlots(ctx context.Context, r Run) (int, error) {
	limit, _ := strconv.Atoi(r.Notes[noteMaxParallel])
	if limit < 1 {
		limit = 1
	}
	running, err := o.ledger.ListRuns(ctx, RunFilter{Pipeline: r.Pipeline, Status: RunRunning, Limit: maxBackfillParallel + 1})
	if err != nil {
		return 0, err
	}
	busy := 0
	for _, x := range running {
		if x.Trigger == "backfill" {
			busy++
		}
	}
	return limit - busy, nil
}
