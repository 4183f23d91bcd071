package chaos

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/notify/discord/discordtest"
	"github.com/pipelinehq/pipeline/pipeline"
)

// Scenario 6a: notifier faults at the interface. A share of notifications
// fails and another share blocks until its context ends; no step may fail,
// stall or run twice for it.
func TestNotifierFaults(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) {
			d := newDice(0.2, uint64(time.Now().UnixNano()))
			var fn *faultyNotifier
			s := newStack(t, backend, chainYAML("10ms"), stackOptions{wrap: app.Wrappers{Notifier: func(n pipeline.Notifier) pipeline.Notifier {
				fn = &faultyNotifier{inner: n, d: d}
				return fn
			}}})
			f := figures{scenario: "notifier-faults", backend: backend}
			var ids []string
			for i := range sz.outageRuns {
				key := fmt.Sprintf("nf-%d", i)
				f.tried++
				if s.startRun(key) {
					ids = append(ids, "chaos@"+key)
				}
			}
			began := time.Now()
			views := waitRuns(ids, 2*time.Minute, s.getRun)
			f.recovery = time.Since(began)
			bodies, err := ReadBodies(s.bodyLog())
			if err != nil {
				t.Fatal(err)
			}
			problems := tally(t, &f, ids, views, bodies, nil, nil)
			f.add("notifications %d", fn.calls.Load())
			f.add("failed %d", fn.failed.Load())
			f.add("blocked %d", fn.blocked.Load())
			check(t, f, problems)
		})
	}
}

// Scenario 6b: a Discord outage on the wire. The stand-in answers 500 for
// the first half of the outage, then 429 with Retry-After (two per run) for
// the second, then recovers; the service reaches it through a proxy that also resets its
// connections during the outage. Every run must get exactly its two messages
// (the live one, brought to its final state, and the completion embed) once
// Discord is back, and the calls made during the outage are counted.
func TestDiscordOutage(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { discordOutage(t, backend, sz) })
	}
}

func discordOutage(t *testing.T, backend string, sz size) {
	dt := discordtest.New()
	t.Cleanup(dt.Close)
	px := newProxy(t, strings.TrimPrefix(dt.URL, "http://"), 0)
	webhook := "http://" + px.addr() + strings.TrimPrefix(dt.WebhookURL(), dt.URL)
	s := newStack(t, backend, chainYAML("10ms"), stackOptions{discordURL: webhook})
	f := figures{scenario: "discord-outage", backend: backend}
	down := time.Now()
	dt.Down(500)
	stopResets := px.resetEvery(time.Second)
	var ids []string
	for i := range sz.outageRuns {
		key := fmt.Sprintf("do-%d", i)
		f.tried++
		if s.startRun(key) {
			ids = append(ids, "chaos@"+key)
		}
	}
	// The runs finish while Discord is down: notifications never block steps.
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	for _, id := range ids {
		if !views[id].terminal() {
			t.Errorf("run %s did not finish during the Discord outage: %+v", id, views[id])
		}
	}
	waitUntil(down.Add(sz.outage / 2))
	failing := time.Since(down) // Discord answers 500 to every call until Up
	dt.Up()
	dt.RateLimit(2*len(ids), 2) // the next requests get 429 with Retry-After 2 s
	waitUntil(down.Add(sz.outage))
	stopResets()
	up := time.Now()
	during, failed := 0, 0
	for _, h := range dt.Hits() {
		if !h.At.Before(down) && h.At.Before(up) {
			during++
		}
		if h.Status == http.StatusInternalServerError {
			failed++ // only the first half of the outage answers 500
		}
	}
	// After the outage: exactly two posts per run, the completion last.
	want := func(id string) string { return "(" + strings.TrimPrefix(id, "chaos@") + ")" }
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok := true
		for _, id := range ids {
			if n := countPosts(dt, want(id)); n < 2 {
				ok = false
			}
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	f.recovery = time.Since(up)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, nil, nil)
	missing, doubled := 0, 0
	for _, id := range ids {
		switch n := countPosts(dt, want(id)); {
		case n < 2:
			missing++
			problems = append(problems, fmt.Sprintf("run %s: %d message(s) after the outage, want 2", id, n))
		case n > 2:
			doubled++
			problems = append(problems, fmt.Sprintf("run %s: %d messages, want 2", id, n))
		}
	}
	f.lost += missing
	f.doubled += doubled
	f.add("outage %s", sz.outage)
	bound := outageCallBound(len(ids), failing)
	if failed > bound {
		t.Errorf("calls not paced: Discord answered 500 to %d calls in %s, more than the %d its pacing allows %d runs (%d retries per request until it is known down, then one call per run per %s)",
			failed, failing.Round(time.Millisecond), bound, len(ids), discord.DefaultMaxRetries, discord.DefaultOutageInterval)
	}
	f.add("calls during the outage %d", during)
	f.add("answered 500 %d of at most %d", failed, bound)
	f.add("messages %d", len(dt.Posts()))
	f.add("wire resets %d", px.resets.Load())
	if v := dt.Violations(); len(v) > 0 {
		t.Errorf("payloads Discord would refuse: %v", v)
	}
	check(t, f, problems)
}

// outageCallBound is the most calls the service may make for runs runs while
// Discord answers every call with a failure for failing, by the notifier's
// pacing (notify/discord/outage.go) with the service's settings. Until a
// request has used up its retries Discord is not known to be down, so every
// request in flight then may make all its 1+DefaultMaxRetries attempts; a
// run has at most two such requests at once, whoever asks (the live-message
// worker, the final notification from the handler that finished the run, the
// sweeper re-sending it): posting the live message and posting the final
// embed each hold a claim in the ledger, and no live message exists to edit
// while every call fails. From the first give-up on, each run gets at most
// one call per DefaultOutageInterval however many callers ask. This assumes
// that no request is cut short by its deadline before the first give-up (4 s
// for a final notification, 8 s for the worker's sync, against attempts that
// the stand-in answers at once and backoffs of under 2 s in all).
func outageCallBound(runs int, failing time.Duration) int {
	before := 2 * (1 + discord.DefaultMaxRetries)
	paced := 1 + int(failing/discord.DefaultOutageInterval)
	return runs * (before + paced)
}

func countPosts(dt *discordtest.Server, marker string) int {
	n := 0
	for _, p := range dt.Posts() {
		for _, e := range p.Message.Embeds {
			if strings.Contains(e.Title, marker) {
				n++
				break
			}
		}
	}
	return n
}

// waitUntil sleeps until t: the outage is a span of wall time by design.
func waitUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}
