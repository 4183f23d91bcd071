package discord_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
)

// With a dashboard URL configured, the live message and the final one link
// to the run's page; without it, neither does.
func TestMessagesLinkToTheRunPage(t *testing.T) {
	const want = "https://pipeline.example.com/ui/runs/daily@2026-03-05"
	for _, c := range []struct {
		name, base string
		link       bool
	}{
		{"configured", "https://pipeline.example.com/ui/", true},
		{"configured without slash", "https://pipeline.example.com/ui", true},
		{"not configured", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, []string{"extract"}, func(cfg *discord.Config) { cfg.DashboardURL = c.base })
			e.started()
			e.step("extract", pipeline.EventStepStarted, start)
			e.step("extract", pipeline.EventStepSucceeded, succeed)
			if err := e.n.Notify(context.Background(), e.finish(pipeline.RunSucceeded, "")); err != nil {
				t.Fatal(err)
			}
			posts := e.srv.Posts()
			if len(posts) != 2 {
				t.Fatalf("%d posts, want the live and the final message", len(posts))
			}
			for i, p := range posts {
				emb := p.Message.Embeds[0]
				var field string
				for _, f := range emb.Fields {
					if f.Name == "Dashboard" {
						field = f.Value
					}
				}
				has := emb.URL == want && strings.Contains(field, "("+want+")")
				if has != c.link {
					t.Errorf("post %d: title link %q, field %q; want a link to the run page: %v", i, emb.URL, field, c.link)
				}
			}
		})
	}
	if got := discord.RunPageURL("https://x.test/ui/", "a@b"); got != "https://x.test/ui/runs/a@b" {
		t.Errorf("RunPageURL = %q", got)
	}
}
