package discord

import (
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
)

// Discord's embed limits, counted in runes (Discord counts characters).
const (
	MaxTitle       = 256
	MaxDescription = 4096
	MaxFields      = 25
	MaxFieldName   = 256
	MaxFieldValue  = 1024
	MaxFooter      = 2048
	MaxAuthor      = 256
	MaxEmbedTotal  = 6000
	MaxContent     = 2000
)

const ellipsis = "…"

// truncate cuts s to at most n runes, ending in an ellipsis when cut.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + ellipsis
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// nonEmpty replaces an empty field name or value, which Discord rejects.
func nonEmpty(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// EmbedSize is the rune count Discord checks against MaxEmbedTotal.
func EmbedSize(e *discordgo.MessageEmbed) int {
	n := runes(e.Title) + runes(e.Description)
	for _, f := range e.Fields {
		n += runes(f.Name) + runes(f.Value)
	}
	if e.Footer != nil {
		n += runes(e.Footer.Text)
	}
	if e.Author != nil {
		n += runes(e.Author.Name)
	}
	return n
}

// Clamp makes e fit Discord's limits in place, truncating with an ellipsis:
// first each part to its own limit, then, while the total is over 6000, the
// description, then field values from the last, then whole fields.
func Clamp(e *discordgo.MessageEmbed) *discordgo.MessageEmbed {
	e.Title = truncate(e.Title, MaxTitle)
	e.Description = truncate(e.Description, MaxDescription)
	if len(e.Fields) > MaxFields {
		e.Fields = e.Fields[:MaxFields]
	}
	for _, f := range e.Fields {
		f.Name = truncate(nonEmpty(f.Name), MaxFieldName)
		f.Value = truncate(nonEmpty(f.Value), MaxFieldValue)
	}
	if e.Footer != nil {
		e.Footer.Text = truncate(e.Footer.Text, MaxFooter)
	}
	if e.Author != nil {
		e.Author.Name = truncate(e.Author.Name, MaxAuthor)
	}
	over := EmbedSize(e) - MaxEmbedTotal
	if over <= 0 {
		return e
	}
	if d := runes(e.Description); d > 0 {
		keep := max(d-over, min(d, 200)) // keep the head of the description if we can
		over -= d - keep
		e.Description = truncate(e.Description, keep)
	}
	for i := len(e.Fields) - 1; i >= 0 && over > 0; i-- {
		f := e.Fields[i]
		v := runes(f.Value)
		keep := max(v-over, min(v, 16))
		over -= v - keep
		f.Value = truncate(f.Value, keep)
	}
	for over > 0 && len(e.Fields) > 0 {
		f := e.Fields[len(e.Fields)-1]
		over -= runes(f.Name) + runes(f.Value)
		e.Fields = e.Fields[:len(e.Fields)-1]
	}
	if over > 0 {
		d := runes(e.Description)
		e.Description = truncate(e.Description, d-over)
		over = EmbedSize(e) - MaxEmbedTotal
	}
	if over > 0 {
		e.Title = truncate(e.Title, runes(e.Title)-over)
	}
	return e
}
