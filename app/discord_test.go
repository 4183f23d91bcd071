package app

import (
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/notify/discord/discordtest"
)

// `pipeline run` with DISCORD_WEBHOOK_URL posts one live message (edited as
// steps progress) and one completion embed to the configured host.
func TestRunPostsToTheConfiguredDiscordWebhook(t *testing.T) {
	dc := discordtest.New()
	defer dc.Close()
	out, stderr, err := runArgs(t, "run", "daily", "--file", repoPipelines, "--data", t.TempDir(),
		"--date", "2026-03-15", "--discord-webhook-url", dc.WebhookURL(), "--revision", "pipeline-00042-abc")
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out, stderr)
	}
	if strings.Contains(out, "preview") {
		t.Fatal("printed the preview although a webhook is configured")
	}
	if v := dc.Violations(); len(v) > 0 {
		t.Fatalf("payloads Discord would refuse: %v", v)
	}
	posts := dc.Posts()
	if len(posts) != 2 {
		t.Fatalf("%d posts, want the live message and the completion embed", len(posts))
	}
	live := dc.Message(posts[0].MessageID)
	if live == nil || len(live.Embeds) == 0 || !strings.Contains(live.Embeds[0].Title, "daily") {
		t.Fatalf("live message = %+v", live)
	}
	final := live.Embeds[0]
	if final.Color != posts[1].Message.Embeds[0].Color || final.Footer == nil || !strings.Contains(final.Footer.Text, "pipeline-00042-abc") {
		t.Fatalf("live message not brought to its final state: %+v", final)
	}
}

func TestRunPreviewsTheDiscordMessageWithoutAWebhook(t *testing.T) {
	out, _, err := runArgs(t, "run", "daily", "--file", repoPipelines, "--data", t.TempDir(), "--date", "2026-03-16")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Discord (preview", "[green] daily", "`extract`", "succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("preview lacks %q:\n%s", want, out)
		}
	}
}
