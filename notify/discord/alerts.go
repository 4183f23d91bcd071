package discord

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Colours of the schedule alerts: orange when something is late or missing,
// blue for the follow-up that says a late start happened after all.
const (
	ColorOrange = 0xE67E22
	ColorBlue   = 0x3498DB
)

// scheduleAlert posts a schedule alert (missed start, started late, late
// run) as its own message, mentioning no one, within the final budget. The
// orchestrator deduplicates these through the ledger; an error leaves the
// alert owed and it is sent again later.
func (n *Notifier) scheduleAlert(ctx context.Context, e pipeline.Event) error {
	if e.Schedule == nil {
		return fmt.Errorf("discord: %s event without its schedule alert", e.Kind)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.FinalBudget)
	defer cancel()
	embed := ScheduleEmbed(e, n.cfg.Revision)
	if _, err := n.client.post(ctx, "schedule:"+e.Schedule.Pipeline, &discordgo.WebhookParams{Embeds: []*discordgo.MessageEmbed{embed}, AllowedMentions: noMentions()}); err != nil {
		return fmt.Errorf("discord: %s alert of %s %s: %w", e.Kind, e.Schedule.Pipeline, e.Schedule.Date, err)
	}
	n.log.InfoContext(ctx, "schedule alert sent", "event", string(e.Kind), "pipeline", e.Schedule.Pipeline, "date", e.Schedule.Date)
	return nil
}

// ScheduleEmbed renders a schedule alert: the pipeline and date, what was
// expected when (in the pipeline's time zone), how late, and for a missed
// start the likely causes and the command that checks them; for a late run
// the step in progress and how long it has been there. It fits Discord's
// limits.
func ScheduleEmbed(e pipeline.Event, revision string) *discordgo.MessageEmbed {
	a := e.Schedule
	loc, err := time.LoadLocation(a.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	when := func(t time.Time) string {
		return fmt.Sprintf("%s %s (<t:%d:R>)", t.In(loc).Format("2006-01-02 15:04"), loc, t.Unix())
	}
	em := &discordgo.MessageEmbed{
		Color: ColorOrange,
		Fields: []*discordgo.MessageEmbedField{
			{Name: "Pipeline", Value: a.Pipeline, Inline: true},
			{Name: "Date", Value: a.Date, Inline: true},
		},
		Timestamp: a.Expected.Add(a.Late).UTC().Format(time.RFC3339),
	}
	switch e.Kind {
	case pipeline.EventStartMissed:
		em.Title = fmt.Sprintf("⏰ %s · %s did not start", a.Pipeline, a.Date)
		em.Description = fmt.Sprintf("No run %s after its scheduled time.", fmtMinutes(a.Late))
		em.Fields = append(em.Fields,
			&discordgo.MessageEmbedField{Name: "Expected", Value: when(a.Expected), Inline: true},
			&discordgo.MessageEmbedField{Name: "Late by", Value: fmtMinutes(a.Late), Inline: true},
		)
		if len(a.Causes) > 0 {
			em.Fields = append(em.Fields, &discordgo.MessageEmbedField{Name: "Likely causes", Value: truncate("• "+strings.Join(a.Causes, "\n• "), MaxFieldValue)})
		}
		if a.Check != "" {
			em.Fields = append(em.Fields, &discordgo.MessageEmbedField{Name: "Check with", Value: inlineCode(a.Check)})
		}
	case pipeline.EventStartedLate:
		em.Color = ColorBlue
		em.Title = fmt.Sprintf("▶️ %s · %s started %s late", a.Pipeline, a.Date, fmtMinutes(a.Late))
		em.Description = fmt.Sprintf("The run missed its start (expected %s) and has now started.", when(a.Expected))
		if e.Run.ID != "" {
			em.Fields = append(em.Fields, &discordgo.MessageEmbedField{Name: "Run", Value: inlineCode(e.Run.ID), Inline: true})
		}
		if e.Run.Trigger != "" {
			em.Fields = append(em.Fields, &discordgo.MessageEmbedField{Name: "Trigger", Value: e.Run.Trigger, Inline: true})
		}
	case pipeline.EventRunLate:
		em.Title = fmt.Sprintf("🐢 %s · %s is late", a.Pipeline, a.Date)
		em.Description = fmt.Sprintf("Not finished by its deadline; %s late so far.", fmtMinutes(a.Late))
		em.Fields = append(em.Fields,
			&discordgo.MessageEmbedField{Name: "Deadline", Value: when(a.Expected), Inline: true},
			&discordgo.MessageEmbedField{Name: "Run", Value: inlineCode(e.Run.ID), Inline: true},
		)
		step := "no step has started"
		if a.Step != "" {
			step = fmt.Sprintf("%s — %s for %s", inlineCode(a.Step), a.StepStatus, fmtMinutes(a.StepSince))
		}
		em.Fields = append(em.Fields, &discordgo.MessageEmbedField{Name: "In progress", Value: truncate(step, MaxFieldValue)})
	default:
		em.Title = fmt.Sprintf("%s · %s: %s", a.Pipeline, a.Date, e.Kind)
	}
	em.Title = truncate(em.Title, MaxTitle)
	footer(em, revision)
	return Clamp(em)
}

// lateLine says how late a finished run was, from its recorded deadline, or
// "" when it finished in time (or has no deadline).
func lateLine(r pipeline.Run) string {
	by, dl, ok := pipeline.Late(r)
	if !ok {
		return ""
	}
	return fmt.Sprintf("Finished %s after its deadline (<t:%d:t>).", fmtMinutes(by), dl.Unix())
}

// fmtMinutes shows a lateness to the minute: "42 min", "2h05m".
func fmtMinutes(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Hour {
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
