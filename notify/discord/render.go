package discord

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Embed colours by run state.
const (
	ColorGreen  = 0x2ECC71
	ColorYellow = 0xF1C40F
	ColorRed    = 0xE74C3C
	ColorGrey   = 0x95A5A6
)

// Color is the embed colour of a run state: green when it succeeded, red when
// it failed, grey when cancelled, yellow while pending or running.
func Color(s pipeline.RunStatus) int {
	switch s {
	case pipeline.RunSucceeded:
		return ColorGreen
	case pipeline.RunFailed:
		return ColorRed
	case pipeline.RunCancelled:
		return ColorGrey
	}
	return ColorYellow
}

var stepIcons = map[pipeline.StepStatus]string{
	pipeline.StepPending:   "⏸️",
	pipeline.StepRunning:   "🔄",
	pipeline.StepRetrying:  "⚠️",
	pipeline.StepSucceeded: "✅",
	pipeline.StepFailed:    "❌",
	pipeline.StepCancelled: "⛔",
	pipeline.StepSkipped:   "⏭️",
	pipeline.StepWaiting:   "⏳",
}

// maxStepError bounds the error shown under a step in the live message; the
// failure embed carries the full text.
const maxStepError = 160

// title is "pipeline · date", with the key when it is not the date.
func title(r pipeline.Run) string {
	t := r.Pipeline + " · " + r.Date
	if r.Key != "" && r.Key != r.Date {
		t += " (" + r.Key + ")"
	}
	return t
}

// StepLine is one step of the live message: icon, name, state, duration and
// attempts, e.g. "✅ `load` — succeeded · 1.2s · attempt 1/3".
func StepLine(s pipeline.StepRun) string {
	icon := stepIcons[s.Status]
	if icon == "" {
		icon = "•"
	}
	state := string(s.Status)
	if s.Status == pipeline.StepRetrying {
		state = fmt.Sprintf("retrying %d/%d", s.Attempts, s.MaxAttempts)
	}
	parts := []string{state}
	switch {
	case s.Status == pipeline.StepRunning && !s.StartedAt.IsZero():
		parts = append(parts, fmt.Sprintf("started <t:%d:R>", s.StartedAt.Unix()))
	case s.Status == pipeline.StepWaiting && !s.WaitingSince.IsZero():
		// Discord renders the time waited, live: "since 3 hours ago".
		parts = append(parts, fmt.Sprintf("since <t:%d:R>", s.WaitingSince.Unix()))
	case s.Duration() > 0:
		parts = append(parts, fmtDuration(s.Duration()))
	}
	if s.Attempts > 0 && s.Status != pipeline.StepRetrying {
		parts = append(parts, fmt.Sprintf("attempt %d/%d", s.Attempts, s.MaxAttempts))
	}
	if s.Generation > 1 {
		parts = append(parts, fmt.Sprintf("generation %d", s.Generation))
	}
	if s.Status == pipeline.StepWaiting {
		if s.Check > 0 {
			parts = append(parts, fmt.Sprintf("check %d", s.Check))
		}
		if link := markdownLink("remote work", s.Link); link != "" {
			parts = append(parts, link)
		}
	}
	line := fmt.Sprintf("%s %s — %s", icon, inlineCode(s.Step), strings.Join(parts, " · "))
	if s.Error != "" && (s.Status == pipeline.StepFailed || s.Status == pipeline.StepRetrying || s.Status == pipeline.StepWaiting) {
		first, _, _ := strings.Cut(strings.TrimSpace(s.Error), "\n")
		line += "\n  ↳ " + inlineCode(truncate(first, maxStepError))
	}
	return line
}

// maxLink bounds a link shown in the live message.
const maxLink = 512

// markdownLink is a Markdown link to raw, an absolute http(s) URL, with the
// characters that could end the link (or start another) escaped; "" when
// raw is not such a URL or too long.
func markdownLink(text, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	s := u.String()
	s = strings.NewReplacer("(", "%28", ")", "%29", "[", "%5B", "]", "%5D", " ", "%20", "<", "%3C", ">", "%3E").Replace(s)
	if len(s) > maxLink {
		return ""
	}
	return "[" + text + "](" + s + ")"
}

// Render is the live message of run r as read from the ledger (with steps):
// the title with the pipeline and run date, a line per step, the colour of the
// run's state and the service revision in the footer when set. It fits
// Discord's limits.
func Render(r pipeline.Run, revision string) *discordgo.MessageEmbed {
	lines := make([]string, 0, len(r.Steps))
	for _, s := range r.Steps {
		lines = append(lines, StepLine(s))
	}
	if len(lines) == 0 {
		lines = append(lines, "_no steps recorded_")
	}
	e := &discordgo.MessageEmbed{
		Title:       title(r),
		Description: strings.Join(lines, "\n"),
		Color:       Color(r.Status),
		Fields: []*discordgo.MessageEmbedField{
			{Name: "Status", Value: statusText(r), Inline: true},
			{Name: "Run", Value: inlineCode(r.ID), Inline: true},
		},
	}
	if r.Trigger != "" {
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: "Trigger", Value: r.Trigger, Inline: true})
	}
	e.Fields = append(e.Fields, paramFields(r.Params, MaxFields-len(e.Fields))...)
	if !r.CreatedAt.IsZero() {
		e.Timestamp = r.CreatedAt.UTC().Format(time.RFC3339)
	}
	footer(e, revision)
	return Clamp(e)
}

func statusText(r pipeline.Run) string {
	s := string(r.Status)
	if r.Status.Terminal() && !r.FinishedAt.IsZero() && !r.CreatedAt.IsZero() {
		s += " in " + fmtDuration(r.Duration())
	}
	return s
}

// paramFields are inline fields for params, sorted, at most room of them (the
// last one says how many more there are).
func paramFields(params map[string]string, room int) []*discordgo.MessageEmbedField {
	if room <= 0 || len(params) == 0 {
		return nil
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*discordgo.MessageEmbedField
	for i, k := range keys {
		if len(out) == room-1 && len(keys)-i > 1 {
			out = append(out, &discordgo.MessageEmbedField{Name: "…", Value: fmt.Sprintf("%d more params", len(keys)-i), Inline: true})
			break
		}
		out = append(out, &discordgo.MessageEmbedField{Name: truncate(k, MaxFieldName), Value: inlineCode(truncate(params[k], MaxFieldValue-2)), Inline: true})
	}
	return out
}

func footer(e *discordgo.MessageEmbed, revision string) {
	if revision != "" {
		e.Footer = &discordgo.MessageEmbedFooter{Text: "revision " + revision}
	}
}

// failedStep is the step a failed run failed on, or nil.
func failedStep(r pipeline.Run) *pipeline.StepRun {
	for i := range r.Steps {
		if r.Steps[i].Status == pipeline.StepFailed {
			return &r.Steps[i]
		}
	}
	return nil
}

// failureEmbed is the separate embed posted when a run fails for good.
func failureEmbed(r pipeline.Run, revision, project string) *discordgo.MessageEmbed {
	e := &discordgo.MessageEmbed{
		Title: "❌ " + title(r) + " failed",
		Color: ColorRed,
		URL:   LogsURL(project, r.ID),
		Fields: []*discordgo.MessageEmbedField{
			{Name: "Pipeline", Value: r.Pipeline, Inline: true},
			{Name: "Run", Value: inlineCode(r.ID), Inline: true},
		},
	}
	msg := r.Error
	if s := failedStep(r); s != nil {
		e.Fields = append(e.Fields,
			&discordgo.MessageEmbedField{Name: "Step", Value: inlineCode(s.Step), Inline: true},
			&discordgo.MessageEmbedField{Name: "Attempt", Value: fmt.Sprintf("%d/%d", s.Attempts, s.MaxAttempts), Inline: true},
		)
		if s.Error != "" {
			msg = s.Error
		}
	}
	if !r.FinishedAt.IsZero() && !r.CreatedAt.IsZero() {
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: "Duration", Value: fmtDuration(r.Duration()), Inline: true})
	}
	if late := lateLine(r); late != "" {
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: "Late", Value: late, Inline: true})
	}
	if e.URL != "" {
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: "Logs", Value: "[Cloud Logging](" + e.URL + ")"})
	}
	if msg == "" {
		msg = "(no error message)"
	}
	// The error is cut before it is fenced so the closing fence survives.
	e.Description = codeBlock(truncate(msg, MaxDescription-16))
	if !r.FinishedAt.IsZero() {
		e.Timestamp = r.FinishedAt.UTC().Format(time.RFC3339)
	}
	footer(e, revision)
	return Clamp(e)
}

// completionEmbed is the short embed posted when a run succeeds or is cancelled.
func completionEmbed(r pipeline.Run, revision string) *discordgo.MessageEmbed {
	icon := "✅"
	if r.Status == pipeline.RunCancelled {
		icon = "⛔"
	}
	e := &discordgo.MessageEmbed{
		Title: fmt.Sprintf("%s %s %s", icon, title(r), r.Status),
		Color: Color(r.Status),
	}
	d := "Total duration: unknown"
	if !r.FinishedAt.IsZero() && !r.CreatedAt.IsZero() {
		d = "Total duration: " + fmtDuration(r.Duration())
	}
	if late := lateLine(r); late != "" {
		d += "\n" + late
	}
	if r.Status == pipeline.RunCancelled && r.Error != "" {
		d += "\n" + codeBlock(truncate(r.Error, 1000))
	}
	e.Description = d
	if !r.FinishedAt.IsZero() {
		e.Timestamp = r.FinishedAt.UTC().Format(time.RFC3339)
	}
	footer(e, revision)
	return Clamp(e)
}

// LogsURL links to the run's logs in Cloud Logging, or is "" without a project.
func LogsURL(project, runID string) string {
	if project == "" {
		return ""
	}
	q := strings.ReplaceAll(url.QueryEscape(fmt.Sprintf("jsonPayload.run=%q", runID)), "+", "%20")
	return "https://console.cloud.google.com/logs/query;query=" + q + "?project=" + url.QueryEscape(project)
}

// codeBlock fences s; fences inside s are broken so they cannot end the block.
func codeBlock(s string) string {
	return "```\n" + strings.ReplaceAll(s, "```", "`\u200b``") + "\n```"
}

// inlineCode shows s as code; backticks in s become a look-alike.
func inlineCode(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + strings.ReplaceAll(s, "`", "ˋ") + "`"
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// RunPageURL links to the run's page on the dashboard whose address is base
// (PIPELINE_DASHBOARD_URL, e.g. https://pipeline.example.com/ui/), or is ""
// without one.
func RunPageURL(base, runID string) string {
	if base == "" {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/runs/" + url.PathEscape(runID)
}

// linkRun adds the run page's link to e when the dashboard is configured:
// as the title's link unless it has one (the logs), and as a field.
func linkRun(e *discordgo.MessageEmbed, base, runID string) *discordgo.MessageEmbed {
	u := RunPageURL(base, runID)
	if u == "" {
		return e
	}
	if e.URL == "" {
		e.URL = u
	}
	e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: "Dashboard", Value: "[Open the run](" + u + ")"})
	return Clamp(e)
}
