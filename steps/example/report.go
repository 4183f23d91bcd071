package example

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pipelinehq/pipeline/steps"
)

// ReportFile is the default file example.report writes.
const ReportFile = "report.md"

type report struct {
	dataDir string
	inputs  []string
	output  string
	title   string
}

// newReport builds example.report. Settings: inputs (summary file names,
// default [summary.json]), output (default report.md), title.
func newReport(dataDir string, settings map[string]any) (steps.Step, error) {
	s := steps.ReadSettings(KindReport, settings)
	r := &report{
		dataDir: dataDir,
		inputs:  s.Strings("inputs"),
		output:  fileSetting(s, "output", ReportFile),
		title:   s.String("title", false),
	}
	if s.Has("inputs") && len(r.inputs) == 0 {
		s.Problemf("inputs must list at least one summary file (or be left out)")
	}
	if len(r.inputs) == 0 {
		r.inputs = []string{SummaryFile}
	}
	for _, in := range r.inputs {
		if in != filepath.Base(in) || !filepath.IsLocal(in) || strings.HasPrefix(in, ".") {
			s.Problemf("inputs: %q must be a plain file name", in)
		}
		if in == r.output {
			s.Problemf("output %q is also an input", in)
		}
	}
	if r.title == "" {
		r.title = "Sales report"
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

// Run writes the markdown report and returns {"report": path}.
func (r *report) Run(ctx context.Context, in steps.Input) (json.RawMessage, error) {
	if err := checkCtx(ctx, KindReport); err != nil {
		return nil, err
	}
	dir, err := RunDir(r.dataDir, in)
	if err != nil {
		return nil, err
	}
	sums := make([]*Summary, 0, len(r.inputs))
	for _, name := range r.inputs {
		path := filepath.Join(dir, name)
		data, err := readInput(KindReport, path)
		if err != nil {
			return nil, err
		}
		var s Summary
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, steps.Permanent(fmt.Errorf("%s: %s is not a summary: %w", KindReport, path, err))
		}
		if s.Date != in.DateString() || s.Orders < 0 {
			return nil, steps.Permanent(fmt.Errorf("%s: %s is the summary of %q, not of %s", KindReport, path, s.Date, in.DateString()))
		}
		sums = append(sums, &s)
	}
	path := filepath.Join(dir, r.output)
	if err := writeFileAtomic(path, r.render(in, sums)); err != nil {
		return nil, fmt.Errorf("%s: %w", KindReport, err)
	}
	return output(map[string]string{"report": path})
}

// render writes the report as markdown.
func (r *report) render(in steps.Input, sums []*Summary) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s: %s, %s\n\n", md(r.title), md(in.Pipeline), in.DateString())
	var orders int
	var total int64
	for _, s := range sums {
		orders += s.Orders
		total += floatToCents(s.Total)
	}
	fmt.Fprintf(&b, "Run `%s`: **%d orders**, total **%s**", in.RunID, orders, formatCents(total, true))
	if len(sums) > 1 {
		fmt.Fprintf(&b, " across %d summaries", len(sums))
	}
	b.WriteString(".\n")
	for i, s := range sums {
		heading := "All regions"
		if len(s.Regions) > 0 {
			heading = "Regions " + strings.Join(s.Regions, ", ")
		}
		fmt.Fprintf(&b, "\n## %s\n\n_From %s: %d orders, total %s._\n\n", md(heading), md(r.inputs[i]), s.Orders, formatCents(floatToCents(s.Total), true))
		b.WriteString("| Region | Orders | Total | Share |\n|:--|--:|--:|--:|\n")
		for _, g := range s.ByRegion {
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", md(g.Region), g.Orders, formatCents(floatToCents(g.Total), true), share(g.Total, s.Total))
		}
		b.WriteString("\n**Top customers**\n\n| # | Customer | Orders | Total |\n|--:|:--|--:|--:|\n")
		for j, c := range s.TopCustomers {
			fmt.Fprintf(&b, "| %d | %s | %d | %s |\n", j+1, md(c.Customer), c.Orders, formatCents(floatToCents(c.Total), true))
		}
	}
	return b.Bytes()
}

func share(part, whole float64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*part/whole)
}

// md escapes text for a markdown table cell or heading.
var mdEscaper = strings.NewReplacer(`|`, `\|`, "\n", " ", `*`, `\*`, `_`, `\_`, "`", "\\`")

func md(s string) string { return mdEscaper.Replace(s) }
