package app

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func durOrDash(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

func millis(ms float64) string {
	if ms <= 0 {
		return "-"
	}
	return durOrDash(time.Duration(ms * float64(time.Millisecond)))
}

// printRun prints a run and a line per step: status, attempts, generation,
// duration, error or output.
func printRun(w io.Writer, r pipeline.Run) {
	tw := newTable(w)
	fmt.Fprintf(tw, "run\t%s\n", r.ID)
	fmt.Fprintf(tw, "status\t%s %s\n", runMark(r.Status), r.Status)
	fmt.Fprintf(tw, "date\t%s\n", r.Date)
	if r.Trigger != "" {
		fmt.Fprintf(tw, "trigger\t%s\n", r.Trigger)
	}
	if r.DefinitionVersion != "" {
		fmt.Fprintf(tw, "version\t%s (the definition the run keeps)\n", r.DefinitionVersion)
	}
	fmt.Fprintf(tw, "created\t%s\n", timeOrDash(r.CreatedAt))
	if !r.StartedAt.IsZero() { // the latest launch or re-run: the duration counts from it
		fmt.Fprintf(tw, "started\t%s\n", timeOrDash(r.StartedAt))
	}
	if !r.FinishedAt.IsZero() {
		fmt.Fprintf(tw, "finished\t%s (%s)\n", timeOrDash(r.FinishedAt), durOrDash(r.Duration()))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Params)) {
		fmt.Fprintf(tw, "param\t%s=%s\n", k, r.Params[k])
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", oneLine(r.Error, 200))
	}
	tw.Flush()
	if len(r.Steps) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPTS\tGEN\tDURATION\tERROR / OUTPUT")
	for _, s := range r.Steps {
		detail := oneLine(string(s.Output), 70)
		if s.Error != "" {
			detail = oneLine(s.Error, 70)
		}
		status := string(s.Status)
		if s.Forced {
			status += " (forced)"
		}
		if s.Status == pipeline.StepWaiting {
			detail = waitDetail(s, time.Now())
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%d/%d\t%d\t%s\t%s\n", stepMark(s.Status), s.Step, status, s.Attempts, s.MaxAttempts, s.Generation, durOrDash(s.Duration()), detail)
	}
	tw.Flush()
}

// printRuns prints a line per run.
func printRuns(w io.Writer, runs []pipeline.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs match")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "RUN\tSTATUS\tDATE\tTRIGGER\tCREATED\tDURATION\tERROR")
	for _, r := range runs {
		d := time.Duration(0)
		if !r.FinishedAt.IsZero() {
			d = r.Duration()
		}
		trigger := r.Trigger
		if trigger == "" {
			trigger = "-"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", r.ID, runMark(r.Status), listStatus(r), r.Date, trigger, timeOrDash(r.CreatedAt), durOrDash(d), oneLine(r.Error, 60))
	}
	tw.Flush()
}

// printBackfill prints a backfill's runs.
func printBackfill(w io.Writer, res pipeline.BackfillResult) {
	launched := map[string]bool{}
	for _, id := range res.Launched {
		launched[id] = true
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "DATE\tRUN\tSTATUS\tNOTE")
	for _, r := range res.Runs {
		note := "existing"
		switch {
		case launched[r.RunID]:
			note = "launched"
		case r.Created:
			note = "new, waits for a slot"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Date, r.RunID, r.Status, note)
	}
	tw.Flush()
}

// printStats prints a line per pipeline and one per step.
func printStats(w io.Writer, res statsResult) {
	fmt.Fprintf(w, "since %s\n", timeOrDash(res.Since))
	if len(res.Pipelines) == 0 {
		fmt.Fprintln(w, "no runs")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "PIPELINE\tSTEP\tRUNS\tSUCCEEDED\tFAILED\tSUCCESS\tAVG\tP95")
	for _, p := range res.Pipelines {
		runs := fmt.Sprintf("%d", p.Runs)
		if p.Truncated {
			runs += "+"
		}
		fmt.Fprintf(tw, "%s\t(run)\t%s\t%d\t%d\t%s\t%s\t%s\n", p.Pipeline, runs, p.Succeeded, p.Failed, pct(p.SuccessRate, p.Succeeded+p.Failed), millis(p.AvgMillis), millis(p.P95Millis))
		for _, s := range p.Steps {
			fmt.Fprintf(tw, "\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Step, s.Runs, s.Succeeded, s.Failed, pct(s.SuccessRate, s.Succeeded+s.Failed), millis(s.AvgMillis), millis(s.P95Millis))
		}
	}
	tw.Flush()
}

func pct(rate float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", rate*100)
}

// waitDetail describes a waiting step's wait at now: how long it has
// waited, its next check and the link to the remote work.
func waitDetail(s pipeline.StepRun, now time.Time) string {
	d := fmt.Sprintf("waited %s", now.Sub(s.WaitingSince).Round(time.Second))
	if !s.NextCheckAt.IsZero() {
		d += fmt.Sprintf(", check %d at %s", s.Check, s.NextCheckAt.Local().Format("15:04:05"))
	}
	if s.Link != "" {
		d += ", " + s.Link
	}
	if s.Error != "" {
		d += "; " + oneLine(s.Error, 60)
	}
	return d
}
