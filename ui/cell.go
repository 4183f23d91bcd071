package ui

import (
	"fmt"
	"html"
	"html/template"
	"net/url"
	"strings"
)

// HTML renders a grid cell. A grid has up to 90 days x its steps of them,
// so each is built in one step rather than by a dozen template actions (a
// 30 x 10 grid then renders in a few milliseconds and stays well under
// 100 KB). Every value is escaped. The tooltip is the aria-label, shown by
// CSS on hover and focus.
func (c gridCell) HTML() template.HTML {
	var b strings.Builder
	label := fmt.Sprintf("%s on %s: %s", c.Step, c.Date, labels[c.Status])
	if c.Attempts > 0 {
		label += fmt.Sprintf(", attempts %d/%d", c.Attempts, c.MaxAttempts)
	}
	if c.Duration > 0 {
		label += ", " + fmtDur(c.Duration)
	}
	attrs := fmt.Sprintf(`class="cell st-%s" data-step="%s" data-date="%s" data-status="%s" aria-label="%s"`,
		html.EscapeString(c.Status), html.EscapeString(c.Step), html.EscapeString(c.Date), html.EscapeString(c.Status), html.EscapeString(label))
	if c.RunID == "" {
		fmt.Fprintf(&b, `<span %s><span aria-hidden="true">%s</span></span>`, strings.Replace(attrs, label, "no run on "+html.EscapeString(c.Date), 1), icons[notRun])
		return template.HTML(b.String())
	}
	fmt.Fprintf(&b, `<a href="/ui/runs/%s#step-%s" %s><span aria-hidden="true">%s</span></a>`,
		html.EscapeString(url.PathEscape(c.RunID)), html.EscapeString(c.Step), attrs, icons[c.Status])
	return template.HTML(b.String())
}
