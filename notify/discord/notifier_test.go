package discord_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t, []string{"extract", "transform", "load"}, nil)
	e.work(e.n)
	if u, _ := url.Parse(e.srv.URL); !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Fatalf("stand-in is on %s", u.Host)
	}
	e.started()
	e.liveShows("`extract` — pending")
	for _, s := range []string{"extract", "transform", "load"} {
		e.step(s, pipeline.EventStepStarted, start)
		e.liveShows("`" + s + "` — running")
		e.step(s, pipeline.EventStepSucceeded, succeed)
		e.liveShows("`" + s + "` — succeeded · 1.2s · attempt 1/3")
	}
	ev := e.finish(pipeline.RunSucceeded, "")
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("final Notify: %v", err)
	}
	posts := e.srv.Posts()
	if len(posts) != 2 {
		t.Fatalf("%d posts, want the live message and the completion: %+v", len(posts), posts)
	}
	if len(e.srv.Edits()) < 6 {
		t.Errorf("%d edits, want at least one per step change", len(e.srv.Edits()))
	}
	live := e.srv.Message(posts[0].MessageID).Embeds[0]
	if live.Color != discord.ColorGreen || strings.Contains(live.Description, "running") || !strings.Contains(live.Title, "daily · 2026-03-05") {
		t.Errorf("final live message: %+v", live)
	}
	if live.Footer == nil || live.Footer.Text != "revision pipeline-00042-abc" {
		t.Errorf("footer %+v", live.Footer)
	}
	done := posts[1].Message
	if done.Content != "" || !strings.Contains(done.Embeds[0].Description, "Total duration: 1m") || done.Embeds[0].Color != discord.ColorGreen {
		t.Errorf("completion: %+v %+v", done, done.Embeds[0])
	}
	if got := e.ledgerRun().Notes; got[discord.NoteLive] != posts[0].MessageID || !strings.HasPrefix(got[discord.NoteFinal], "posted:succeeded@") {
		t.Errorf("notes %v", got)
	}
	e.noViolations()
}

func TestFailurePingsOnlyTheMention(t *testing.T) {
	const role = "424242424242"
	e := newEnv(t, []string{"extract", "load"}, func(c *discord.Config) { c.Mention = "<@&" + role + ">" })
	e.srv.AllowMentions(role)
	e.work(e.n)
	e.started()
	msg := "boom @everyone @here <@&999999999> <@1234> ```end the fence``` and more"
	e.step("extract", pipeline.EventStepStarted, start)
	e.step("extract", pipeline.EventStepRetrying, fail(pipeline.StepRetrying, "transient: "+msg))
	e.liveShows("retrying 1/3")
	e.step("extract", pipeline.EventStepStarted, start)
	e.step("extract", pipeline.EventStepFailed, fail(pipeline.StepFailed, msg))
	ev := e.finish(pipeline.RunFailed, "step extract failed: "+msg)
	if err := e.n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	posts := e.srv.Posts()
	if len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	f := posts[1].Message
	if f.Content != "<@&"+role+">" {
		t.Errorf("content %q", f.Content)
	}
	am := f.AllowedMentions
	if am == nil || len(am.Parse) != 0 || len(am.Roles) != 1 || am.Roles[0] != role || len(am.Users) != 0 {
		t.Errorf("allowed mentions %+v", am)
	}
	emb := f.Embeds[0]
	if !strings.Contains(emb.Description, "@everyone") || !strings.HasPrefix(emb.Description, "```\n") || !strings.HasSuffix(emb.Description, "\n```") ||
		strings.Count(emb.Description, "```") != 2 {
		t.Errorf("error block %q", emb.Description)
	}
	fields := map[string]string{}
	for _, fl := range emb.Fields {
		fields[fl.Name] = fl.Value
	}
	if fields["Step"] != "`extract`" || fields["Attempt"] != "2/3" || fields["Pipeline"] != "daily" || fields["Run"] != "`daily@2026-03-05`" {
		t.Errorf("fields %v", fields)
	}
	wantLogs := "https://console.cloud.google.com/logs/query;query=jsonPayload.run%3D%22daily%402026-03-05%22?project=acme-prod"
	if emb.URL != wantLogs || !strings.Contains(fields["Logs"], wantLogs) {
		t.Errorf("logs link %q / %q", emb.URL, fields["Logs"])
	}
	if emb.Color != discord.ColorRed {
		t.Errorf("colour %x", emb.Color)
	}
	// The live message and its edits never allow a ping.
	for _, r := range append(e.srv.Edits(), posts[0]) {
		if am := r.Message.AllowedMentions; am == nil || len(am.Roles)+len(am.Users)+len(am.Parse) != 0 {
			t.Errorf("live message %s allows %+v", r.MessageID, am)
		}
	}
	e.liveShows("❌ `extract` — failed")
	e.noViolations()
}

func TestDuplicateFinalEventsPostOnce(t *testing.T) {
	e := newEnv(t, []string{"only"}, nil)
	other := e.notifier(nil) // a second instance on the same ledger
	e.started()
	e.step("only", pipeline.EventStepStarted, start)
	e.step("only", pipeline.EventStepSucceeded, succeed)
	ev := e.finish(pipeline.RunSucceeded, "")
	var wg sync.WaitGroup
	for i := range 6 {
		n := e.n
		if i%2 == 1 {
			n = other
		}
		wg.Go(func() {
			// Concurrent duplicates may find the other's claim and report
			// the notification still owed; they never post twice.
			_ = n.Notify(context.Background(), ev)
		})
	}
	wg.Wait()
	for _, n := range []*discord.Notifier{e.n, other} {
		if err := n.Notify(context.Background(), ev); err != nil {
			t.Fatalf("re-sent final: %v", err)
		}
	}
	if posts := e.srv.Posts(); len(posts) != 2 {
		t.Fatalf("%d posts, want live + completion once: %+v", len(posts), posts)
	}
	e.noViolations()
}

func TestRetryThatSucceedsPostsNothingNew(t *testing.T) {
	e := newEnv(t, []string{"flaky"}, nil)
	e.work(e.n)
	e.started()
	e.step("flaky", pipeline.EventStepStarted, start)
	e.step("flaky", pipeline.EventStepRetrying, fail(pipeline.StepRetrying, "503 from upstream"))
	e.liveShows("⚠️ `flaky` — retrying 1/3")
	e.step("flaky", pipeline.EventStepStarted, start)
	e.step("flaky", pipeline.EventStepSucceeded, succeed)
	e.liveShows("`flaky` — succeeded · 1.2s · attempt 2/3")
	if posts := e.srv.Posts(); len(posts) != 1 {
		t.Fatalf("%d posts during the run, want only the live message", len(posts))
	}
	e.noViolations()
}

func TestReRunAnnouncesItsNewFinish(t *testing.T) {
	e := newEnv(t, []string{"s"}, nil)
	e.started()
	e.step("s", pipeline.EventStepStarted, start)
	e.step("s", pipeline.EventStepFailed, fail(pipeline.StepFailed, "bad input"))
	if err := e.n.Notify(context.Background(), e.finish(pipeline.RunFailed, "bad input")); err != nil {
		t.Fatal(err)
	}
	// An operator re-runs the step; the run finishes again, this time well.
	r := e.ledgerRun()
	r.Steps, r.Status, r.FinishedAt, r.Notify = nil, pipeline.RunRunning, r.FinishedAt.AddDate(0, 0, -1), pipeline.NotifyNone
	if _, err := e.l.UpdateRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	e.step("s", pipeline.EventStepStarted, start)
	e.step("s", pipeline.EventStepSucceeded, succeed)
	if err := e.n.Notify(context.Background(), e.finish(pipeline.RunSucceeded, "")); err != nil {
		t.Fatal(err)
	}
	posts := e.srv.Posts()
	if len(posts) != 3 || !strings.Contains(posts[1].Message.Embeds[0].Title, "failed") || !strings.Contains(posts[2].Message.Embeds[0].Title, "succeeded") {
		t.Fatalf("posts %+v", posts)
	}
	e.noViolations()
}
