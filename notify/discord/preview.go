package discord

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
)

var relTimeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<t:(-?[0-9]+):R>`) })

// ColorName names an embed colour for a terminal: green, yellow, red, grey or #rrggbb.
func ColorName(c int) string {
	switch c {
	case ColorGreen:
		return "green"
	case ColorYellow:
		return "yellow"
	case ColorRed:
		return "red"
	case ColorGrey:
		return "grey"
	}
	return fmt.Sprintf("#%06x", c)
}

// Preview renders an embed for a terminal, as it would appear in Discord:
// the title with its colour, one line per description line (a step of the
// live message), the fields and the footer.
func Preview(e *discordgo.MessageEmbed) string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s\n", ColorName(e.Color), e.Title)
	if e.URL != "" {
		fmt.Fprintf(&b, "  %s\n", e.URL)
	}
	if e.Description != "" {
		desc := relTimeRE().ReplaceAllStringFunc(e.Description, func(m string) string {
			sec, err := strconv.ParseInt(relTimeRE().FindStringSubmatch(m)[1], 10, 64)
			if err != nil {
				return m
			}
			return time.Unix(sec, 0).UTC().Format("15:04:05Z")
		})
		for _, l := range strings.Split(desc, "\n") {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	var fs []string
	for _, f := range e.Fields {
		fs = append(fs, f.Name+": "+f.Value)
	}
	if len(fs) > 0 {
		fmt.Fprintf(&b, "  %s\n", strings.Join(fs, " | "))
	}
	if e.Footer != nil && e.Footer.Text != "" {
		fmt.Fprintf(&b, "  — %s\n", e.Footer.Text)
	}
	return b.String()
}
