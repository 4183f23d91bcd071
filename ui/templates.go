package ui

import (
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"grid", "run", "stats", "queue", "error"}

// parsePages parses every page template in fsys, each with layout.html.
func parsePages(fsys fs.FS) (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, p := range pageNames {
		t, err := template.New(p).Funcs(funcs).ParseFS(fsys, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", p, err)
		}
		pages[p] = t
	}
	return pages, nil
}

// templates returns the page templates, parsed on first use rather than in
// New: parsing them is about a millisecond of serve's start, before
// /healthz answers, for a page that may never be asked for. A parse error is
// kept and returned on every call (TestTemplatesParse keeps it out of
// releases).
func (h *Handler) templates() (map[string]*template.Template, error) {
	h.parseOnce.Do(func() { h.pages, h.parseErr = parsePages(h.tmplFS) })
	return h.pages, h.parseErr
}

// Cell states beyond the step states: a step that never ran.
const notRun = "notrun"

var icons = map[string]string{
	string(pipeline.StepSucceeded): "✓",
	string(pipeline.StepFailed):    "✗",
	string(pipeline.StepRunning):   "▶",
	string(pipeline.StepRetrying):  "↻",
	string(pipeline.StepWaiting):   "◷",
	string(pipeline.StepPending):   "○",
	string(pipeline.StepSkipped):   "»",
	string(pipeline.StepCancelled): "⊘",
	notRun:                         "·",
}

var labels = map[string]string{
	string(pipeline.StepSucceeded): "succeeded",
	string(pipeline.StepFailed):    "failed",
	string(pipeline.StepRunning):   "running",
	string(pipeline.StepRetrying):  "retrying",
	string(pipeline.StepWaiting):   "waiting",
	string(pipeline.StepPending):   "pending",
	string(pipeline.StepSkipped):   "skipped",
	string(pipeline.StepCancelled): "cancelled",
	notRun:                         "not run",
}

var funcs = template.FuncMap{
	"icon":   func(s string) string { return icons[s] },
	"label":  func(s string) string { return labels[s] },
	"dur":    fmtDur,
	"ts":     fmtTime,
	"pct":    func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"ms":     func(f float64) string { return fmtDur(time.Duration(f * float64(time.Millisecond))) },
	"str":    func(v any) string { return fmt.Sprint(v) },
	"split":  strings.Fields,
	"span":   fmtSpan,
	"recent": recentAttempts,
}

// fmtDur prints a duration for people: 850ms, 12.3s, 4m05s, 2h10m.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// shownAttempts is how many of a step's attempts its list on the run page
// shows (the timeline shows all), so that a run whose steps all used their
// whole history stays under the page bound.
const shownAttempts = 5

// recentAttempts are the last shownAttempts of h, newest last.
func recentAttempts(h []pipeline.Attempt) []pipeline.Attempt {
	return h[max(0, len(h)-shownAttempts):]
}

// fmtSpan prints the time from a to b, or "–" when either is unknown.
func fmtSpan(a, b time.Time) string {
	if a.IsZero() || b.IsZero() {
		return "–"
	}
	return fmtDur(b.Sub(a))
}

// fmtTime prints a time in loc (UTC if nil), or "–".
func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "–"
	}
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}
