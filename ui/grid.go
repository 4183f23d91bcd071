package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Grid limits: the days a grid may show.
const (
	defaultDays = 14
	maxDays     = 90
	// maxGridRuns bounds the runs one pipeline's grid lists.
	maxGridRuns = 1000
)

var dayChoices = []int{7, 14, 30, 60}

type gridData struct {
	Days       int
	DayChoices []int
	Filter     string
	Pipelines  []gridPipeline
	Start      startData
}

type gridPipeline struct {
	Name     string
	Schedule string
	TimeZone string
	Next     time.Time
	Loc      *time.Location
	// Pause is whether the pipeline is paused (pipeline pause), by whom and why.
	Pause pipeline.PauseState
	Cols  []gridCol
	Rows  []gridRow
}

type gridCol struct {
	Date     string
	Weekday  string
	RunID    string // empty: no run that day
	Status   string
	Duration time.Duration // of a finished run
	Since    time.Time     // start of an unfinished run
	Trigger  string
}

type gridRow struct {
	Step  string
	Cells []gridCell
}

type gridCell struct {
	Step        string
	Date        string
	RunID       string
	Status      string
	Attempts    int
	MaxAttempts int
	Duration    time.Duration
}

// parseDays reads ?days=N (1..maxDays).
func parseDays(q url.Values) (int, error) {
	v := q.Get("days")
	if v == "" {
		return defaultDays, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxDays {
		return 0, fmt.Errorf("%w: days %q must be a whole number from 1 to %d", pipeline.ErrInvalid, v, maxDays)
	}
	return n, nil
}

func (h *Handler) grid(ctx context.Context, r *http.Request, _ access) (string, view, error) {
	q := r.URL.Query()
	days, err := parseDays(q)
	if err != nil {
		return "", view{}, err
	}
	data := gridData{Days: days, DayChoices: dayChoices, Filter: q.Get("pipeline"), Start: h.startFor(q.Get("pipeline"))}
	defs := h.o.Catalog().All()
	if data.Filter != "" {
		d := h.o.Catalog().Get(data.Filter)
		if d == nil {
			return "", view{}, fmt.Errorf("%w: no pipeline %q is loaded", pipeline.ErrNotFound, data.Filter)
		}
		defs = []*pipeline.Definition{d}
	}
	live := false
	for _, def := range defs {
		gp, unfinished, err := h.gridFor(ctx, def, days)
		if err != nil {
			return "", view{}, err
		}
		live = live || unfinished
		data.Pipelines = append(data.Pipelines, gp)
	}
	v := view{Title: "Runs", Nav: "grid", Data: data}
	if live {
		v.Live = r.URL.String()
	}
	return "grid", v, nil
}

// gridFor builds one pipeline's grid over the last days (in its time zone):
// one list of runs, plus the steps of unfinished runs (finished runs carry
// their summary).
func (h *Handler) gridFor(ctx context.Context, def *pipeline.Definition, days int) (gridPipeline, bool, error) {
	loc := def.Location
	if loc == nil {
		loc = time.UTC
	}
	now := h.cfg.Now().In(loc)
	gp := gridPipeline{Name: def.Name, Schedule: def.Schedule, TimeZone: loc.String(), Loc: loc}
	if def.Schedule != "" {
		if s, err := pipeline.ParseSchedule(def.Schedule); err == nil {
			gp.Next = pipeline.NextFire(s, loc, now) // the local cron's and the sweeper's rule
		}
		pause, err := h.o.PauseState(ctx, def.Name)
		if err != nil {
			return gridPipeline{}, false, err
		}
		gp.Pause = pause
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	first := today.AddDate(0, 0, -(days - 1))
	firstDate := first.Format(time.DateOnly)
	// A run is created on or after its date, except a run started ahead of
	// time; a day's margin covers time zones.
	runs, err := h.led.ListRuns(ctx, pipeline.RunFilter{Pipeline: def.Name, Since: first.AddDate(0, 0, -1), Limit: maxGridRuns})
	if err != nil {
		return gp, false, fmt.Errorf("grid %s: %w", def.Name, err)
	}
	byDate := map[string][]pipeline.Run{}
	for _, run := range runs {
		if run.Date >= firstDate {
			byDate[run.Date] = append(byDate[run.Date], run)
		}
	}
	steps := def.StepNames()
	live := false
	type colSteps struct {
		col   gridCol
		cells map[string]gridCell
	}
	var cols []colSteps
	for d := first; !d.After(today); d = d.AddDate(0, 0, 1) {
		date := d.Format(time.DateOnly)
		dayRuns := byDate[date]
		if len(dayRuns) == 0 {
			cols = append(cols, colSteps{col: gridCol{Date: date, Weekday: d.Weekday().String()[:3]}})
			continue
		}
		// Oldest first within a day (ListRuns is newest first).
		slices.Reverse(dayRuns)
		for _, run := range dayRuns {
			cells, err := h.cellsOf(ctx, run)
			if err != nil {
				return gp, false, err
			}
			if !run.Status.Terminal() {
				live = true
			}
			for _, c := range cells {
				if !slices.Contains(steps, c.Step) {
					steps = append(steps, c.Step) // a step of an older revision
				}
			}
			cols = append(cols, colSteps{col: gridCol{Date: date, Weekday: d.Weekday().String()[:3], RunID: run.ID,
				Status: string(run.Status), Duration: runDuration(run), Since: runStart(run), Trigger: run.Trigger}, cells: cells})
		}
	}
	for _, c := range cols {
		gp.Cols = append(gp.Cols, c.col)
	}
	for _, s := range steps {
		row := gridRow{Step: s}
		for _, c := range cols {
			cell, ok := c.cells[s]
			if !ok {
				cell = gridCell{Step: s, Status: notRun, RunID: c.col.RunID}
			}
			cell.Date = c.col.Date
			row.Cells = append(row.Cells, cell)
		}
		gp.Rows = append(gp.Rows, row)
	}
	return gp, live, nil
}

// cellsOf gives a run's step cells: from the run's summary when it is final
// (no read), else from its steps (one read of the run and its steps).
func (h *Handler) cellsOf(ctx context.Context, run pipeline.Run) (map[string]gridCell, error) {
	out := map[string]gridCell{}
	if pipeline.SummaryFinal(run) {
		for _, s := range run.Summary {
			out[s.Step] = gridCell{Step: s.Step, RunID: run.ID, Status: cellStatus(run.Status, s.Status),
				Attempts: s.Attempts, MaxAttempts: s.MaxAttempts, Duration: s.Duration()}
		}
		return out, nil
	}
	full, err := h.led.GetRun(ctx, run.ID)
	if err != nil {
		return nil, fmt.Errorf("grid: run %s: %w", run.ID, err)
	}
	for _, s := range full.Steps {
		out[s.Step] = gridCell{Step: s.Step, RunID: run.ID, Status: cellStatus(full.Status, s.Status),
			Attempts: s.Attempts, MaxAttempts: s.MaxAttempts, Duration: s.Duration()}
	}
	return out, nil
}

// cellStatus is what a step's cell shows: a step still pending in a run
// that ended never ran.
func cellStatus(run pipeline.RunStatus, s pipeline.StepStatus) string {
	if s == pipeline.StepPending && run.Terminal() {
		return notRun
	}
	return string(s)
}

// runDuration is how long a finished run took, from its (last) start to its
// end; zero while it runs. Pages show an unfinished run's start instead of a
// growing duration, so that a live page changes only when the run does.
func runDuration(r pipeline.Run) time.Duration {
	if !r.Status.Terminal() || r.FinishedAt.IsZero() {
		return 0
	}
	return r.FinishedAt.Sub(runStart(r))
}

// runStart is when a run last started.
func runStart(r pipeline.Run) time.Time {
	if r.StartedAt.IsZero() {
		return r.CreatedAt
	}
	return r.StartedAt
}
