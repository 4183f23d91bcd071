package discord_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
)

// Huge errors, params and step lists are cut to Discord's limits (the
// stand-in rejects anything over them) with an ellipsis.
func TestHugeContentIsTruncated(t *testing.T) {
	var names []string
	for i := range 60 {
		names = append(names, strings.Repeat("step", 10)+string(rune('a'+i%26))+strings.Repeat("x", i))
	}
	e := newEnv(t, names, nil)
	e.srv.AllowMentions("1")
	ctx := context.Background()
	r := e.ledgerRun()
	r.Steps = nil
	r.Params = map[string]string{}
	for i := range 40 {
		r.Params[strings.Repeat("p", 50)+string(rune('A'+i))] = strings.Repeat("ü", 1024)
	}
	if _, err := e.l.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("💥 error @everyone ", 2000)
	e.step(names[0], pipeline.EventStepStarted, start)
	e.step(names[0], pipeline.EventStepFailed, fail(pipeline.StepFailed, huge))
	if err := e.n.Notify(ctx, e.finish(pipeline.RunFailed, huge)); err != nil {
		t.Fatal(err)
	}
	e.noViolations()
	posts := e.srv.Posts()
	if len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	for _, p := range posts {
		emb := p.Message.Embeds[0]
		if n := discord.EmbedSize(emb); n > discord.MaxEmbedTotal {
			t.Errorf("embed of %d runes", n)
		}
	}
	if d := posts[1].Message.Embeds[0].Description; !strings.HasSuffix(d, "…\n```") {
		t.Errorf("failure description does not end in a cut, closed code block: …%q", d[len(d)-20:])
	}
}

func TestClampEveryLimit(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	e := &discordgo.MessageEmbed{
		Title: long(300), Description: long(5000),
		Footer: &discordgo.MessageEmbedFooter{Text: long(3000)},
		Author: &discordgo.MessageEmbedAuthor{Name: long(300)},
	}
	for range 30 {
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: long(300), Value: long(2000)})
	}
	e.Fields = append(e.Fields[:3], &discordgo.MessageEmbedField{})
	discord.Clamp(e)
	checks := []struct {
		what string
		got  int
		max  int
	}{
		{"title", len([]rune(e.Title)), discord.MaxTitle},
		{"description", len([]rune(e.Description)), discord.MaxDescription},
		{"footer", len([]rune(e.Footer.Text)), discord.MaxFooter},
		{"author", len([]rune(e.Author.Name)), discord.MaxAuthor},
		{"total", discord.EmbedSize(e), discord.MaxEmbedTotal},
		{"fields", len(e.Fields), discord.MaxFields},
	}
	for _, c := range checks {
		if c.got > c.max {
			t.Errorf("%s: %d > %d", c.what, c.got, c.max)
		}
	}
	for _, f := range e.Fields {
		if f.Name == "" || f.Value == "" || len([]rune(f.Value)) > discord.MaxFieldValue {
			t.Errorf("field %q: %d runes", f.Name, len([]rune(f.Value)))
		}
	}
	if !strings.HasSuffix(e.Title, "…") || !strings.HasSuffix(e.Description, "…") {
		t.Errorf("cut without an ellipsis: %q", e.Title)
	}
}

func TestRenderAndPreview(t *testing.T) {
	start := time.Date(2026, 3, 5, 6, 0, 0, 0, time.UTC)
	r := pipeline.Run{
		ID: "daily@2026-03-05", Pipeline: "daily", Key: "2026-03-05", Date: "2026-03-05", Status: pipeline.RunRunning, CreatedAt: start,
		Steps: []pipeline.StepRun{
			{Step: "extract", Status: pipeline.StepSucceeded, Attempts: 1, MaxAttempts: 3, StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond)},
			{Step: "transform", Status: pipeline.StepRetrying, Attempts: 2, MaxAttempts: 3, StartedAt: start, FinishedAt: start.Add(time.Second), Error: "upstream 503"},
			{Step: "load", Status: pipeline.StepRunning, Attempts: 1, MaxAttempts: 3, StartedAt: start},
			{Step: "report", Status: pipeline.StepPending, MaxAttempts: 3},
			{Step: "cleanup", Status: pipeline.StepSkipped, MaxAttempts: 1},
		},
	}
	got := discord.Preview(discord.Render(r, "rev-7"))
	for _, want := range []string{
		"[yellow] daily · 2026-03-05\n",
		"✅ `extract` — succeeded · 1.5s · attempt 1/3\n",
		"⚠️ `transform` — retrying 2/3 · 1s\n    ↳ `upstream 503`\n",
		"🔄 `load` — running · started 06:00:00Z · attempt 1/3\n",
		"⏸️ `report` — pending\n",
		"⏭️ `cleanup` — skipped\n",
		"Status: running | Run: `daily@2026-03-05`",
		"— revision rev-7\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("preview lacks %q:\n%s", want, got)
		}
	}
	r.Status = pipeline.RunFailed
	if p := discord.Preview(discord.Render(r, "")); !strings.HasPrefix(p, "[red] ") || strings.Contains(p, "revision") {
		t.Errorf("failed preview:\n%s", p)
	}
	if discord.LogsURL("", r.ID) != "" {
		t.Error("a logs link without a project")
	}
}

func TestNewListsEveryProblem(t *testing.T) {
	_, err := discord.New(discord.Config{WebhookURL: "ftp://example.com/api/webhooks/abc/tok en", Mention: "@everyone"})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"scheme", "numeric snowflake", "token", "mention", "run store"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := discord.New(discord.Config{WebhookURL: "https://discord.com/channels/1/2", Store: fakeStore{}}); err == nil || !strings.Contains(err.Error(), "/api/webhooks/{id}/{token}") {
		t.Errorf("wrong path accepted: %v", err)
	}
	for _, m := range []string{"", "<@&123>", "<@123>", "<@!123>", "role:123", "user:123", "123"} {
		if _, err := discord.New(discord.Config{WebhookURL: "https://discord.com/api/webhooks/1/tok", Store: fakeStore{}, Mention: m}); err != nil {
			t.Errorf("mention %q: %v", m, err)
		}
	}
}

// fakeStore only satisfies the type for New's validation; it is never called.
type fakeStore struct{}

func (fakeStore) GetRun(context.Context, string) (pipeline.Run, error) {
	return pipeline.Run{}, errors.New("unused")
}
func (fakeStore) UpdateRun(context.Context, pipeline.Run) (pipeline.Run, error) {
	return pipeline.Run{}, errors.New("unused")
}

// The webhook URL is used as given: a proxy under a path prefix, with its own
// query, receives every request, and nothing goes to discord.com.
func TestWebhookURLIsHonoured(t *testing.T) {
	e := newEnv(t, []string{"a"}, nil)
	target, _ := url.Parse(e.srv.URL)
	var seen []string
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/corp-proxy")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	n := e.notifier(func(c *discord.Config) {
		c.WebhookURL = proxy.URL + "/corp-proxy/api/webhooks/" + e.srv.ID + "/" + e.srv.Token + "?thread_id=77"
	})
	e.n = n
	e.started()
	e.step("a", pipeline.EventStepStarted, start)
	e.step("a", pipeline.EventStepSucceeded, succeed)
	if err := n.Notify(context.Background(), e.finish(pipeline.RunSucceeded, "")); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 2 {
		t.Fatalf("proxy saw %v", seen)
	}
	for _, s := range seen {
		if !strings.HasPrefix(s, "POST /corp-proxy/api/webhooks/"+e.srv.ID+"/"+e.srv.Token) && !strings.HasPrefix(s, "PATCH /corp-proxy/api/webhooks/") {
			t.Errorf("request %q", s)
		}
		if !strings.Contains(s, "thread_id=77") {
			t.Errorf("configured query dropped: %q", s)
		}
	}
	if !strings.Contains(seen[0], "wait=true") {
		t.Errorf("post without wait: %q", seen[0])
	}
	e.noViolations()
}
