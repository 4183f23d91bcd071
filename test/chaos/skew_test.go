package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/pipeline"
)

// Scenario 14: clock skew (gcp). Two instances of the service share the
// Firestore ledger and the Cloud Tasks emulator queue, as Cloud Run
// instances do; one's clock is 7 minutes behind, the other's 7 minutes
// ahead. The queue delivers through a round-robin HTTP proxy, so a step and
// its successors run on either, and the operator's and the duplicates'
// requests alternate between them.
//
//   - cascades: the re-run scenario's phases (TestRerunCascades) across the
//     two instances: a step's re-run is decided by the generations its
//     successors consumed; finish times written by clocks 14 minutes apart
//     would re-run succeeded steps (or leave stale ones);
//   - owed: runs created 3 days earlier (both clocks set back 3 days) are
//     re-opened by a forced re-run while every final notification is
//     refused; once the notifier is back (and the clocks a minute on, past
//     the grace the finishing instance has to send its own), the sweeper
//     must send each run's owed notification: it looks for owed runs by
//     finish time, not by creation time.
//
// The steps' timeout (their lease) is 20 minutes: a lease is a time written
// by one instance and read by another, so the skew the service tolerates is
// below a step's timeout (documented in docs/reliability.md).
func TestClockSkew(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, true) {
		if backend != "gcp" {
			continue // instances sharing a ledger and a queue: gcp only
		}
		t.Run(backend, func(t *testing.T) {
			t.Run("cascades", func(t *testing.T) { clockSkewCascades(t, sz) })
			t.Run("owed", func(t *testing.T) { clockSkewOwed(t, sz) })
		})
	}
}

// skew is how far each instance's clock is off.
const skew = 7 * time.Minute

// skewYAML is the chain with a 20-minute timeout: leases outlast the skew.
func skewYAML() string {
	return strings.ReplaceAll(chainYAML("30ms"), "timeout: 5s", "timeout: 20m")
}

func clockSkewCascades(t *testing.T, sz size) {
	var rr *roundRobin
	driveReruns(t, sz, rerunSetup{scenario: "clock-skew", backend: "gcp", runs: sz.skewRuns, copies: sz.skewCopies, skewed: true,
		start: func(opts stackOptions) *stack {
			var s *stack
			s, rr = skewedPair(t, skewYAML(), opts, nil)
			return s
		},
		extra: func(f *figures) {
			f.add("skew ±%s", skew)
			f.add("deliveries %s", rr.counts())
		},
	})
}

// skewedPair starts two instances of the service (gcp) sharing a ledger and
// a queue, with clocks skew behind and skew ahead of the machine's (plus
// shift, if given, for both), the queue delivering to them in turn. The
// returned stack sends its requests to both in turn.
func skewedPair(t *testing.T, yaml string, opts stackOptions, shift *atomic.Int64) (*stack, *roundRobin) {
	t.Helper()
	rr := newRoundRobin(t)
	start := func(off time.Duration, peer *stack) *stack {
		o := opts
		o.peer = peer
		o.clock = func() time.Time {
			now := time.Now().Add(off)
			if shift != nil {
				now = now.Add(time.Duration(shift.Load()))
			}
			return now
		}
		return newStackWith(t, "gcp", yaml, o, func(s *stack) {
			rr.add(s.base)
			s.opts.serviceURL = rr.url()
		})
	}
	behind := start(-skew, nil)
	ahead := start(skew, behind)
	behind.spread(ahead)
	return behind, rr
}

// roundRobin is an HTTP reverse proxy that sends each request to the next
// of its targets: the queue's deliveries spread over the instances.
type roundRobin struct {
	srv     *httptest.Server
	mu      sync.Mutex
	targets []*url.URL
	sent    []int64
	next    int
}

func newRoundRobin(t *testing.T) *roundRobin {
	rr := &roundRobin{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		target := rr.pick()
		r.SetURL(target)
		r.Out.Host = target.Host
	}}
	rr.srv = httptest.NewServer(rp)
	t.Cleanup(rr.srv.Close)
	return rr
}

func (rr *roundRobin) url() string { return rr.srv.URL }

func (rr *roundRobin) add(base string) {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.targets = append(rr.targets, u)
	rr.sent = append(rr.sent, 0)
}

func (rr *roundRobin) pick() *url.URL {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	i := rr.next % len(rr.targets)
	rr.next++
	rr.sent[i]++
	return rr.targets[i]
}

// counts is the deliveries each target got, "n+m".
func (rr *roundRobin) counts() string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	parts := make([]string, len(rr.sent))
	for i, n := range rr.sent {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, "+")
}

// finals records the final notifications the instances hand to their
// notifiers, and refuses them while refuse is set.
type finals struct {
	refuse  atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	// sent are the accepted finals of runs that finished after since.
	sent  map[string]int
	since time.Time
}

var errRefused = errors.New("chaos: final notification refused")

// wrap returns a notifier recording n's finals into f.
func (f *finals) wrap(n pipeline.Notifier) pipeline.Notifier { return finalsNotifier{f: f, inner: n} }

type finalsNotifier struct {
	f     *finals
	inner pipeline.Notifier
}

func (n finalsNotifier) Notify(ctx context.Context, e pipeline.Event) error {
	switch e.Kind {
	case pipeline.EventRunSucceeded, pipeline.EventRunFailed, pipeline.EventRunCancelled:
	default:
		return n.inner.Notify(ctx, e)
	}
	if n.f.refuse.Load() {
		n.f.refused.Add(1)
		return errRefused
	}
	if err := n.inner.Notify(ctx, e); err != nil {
		return err
	}
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	if !n.f.since.IsZero() && e.Run.FinishedAt.After(n.f.since) {
		n.f.sent[e.Run.ID]++
	}
	return nil
}

func clockSkewOwed(t *testing.T, sz size) {
	var shift atomic.Int64
	shift.Store(int64(-72 * time.Hour))
	fin := &finals{sent: map[string]int{}}
	opts := stackOptions{leaseGrace: 2 * time.Second, wrap: app.Wrappers{Notifier: fin.wrap}}
	s, _ := skewedPair(t, skewYAML(), opts, &shift)
	f := figures{scenario: "clock-skew-owed", backend: "gcp"}

	// Runs created 3 days earlier, by both instances' clocks.
	var ids []string
	for i := range sz.owedRuns {
		key := fmt.Sprintf("owed-%d", i)
		f.tried++
		if s.startRun(key) {
			ids = append(ids, "chaos@"+key)
		}
	}
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	for _, id := range ids {
		v := views[id]
		if v.Status != "succeeded" {
			t.Fatalf("%s: first run ended %s: %+v", id, v.Status, v.Steps)
		}
		if age := time.Since(v.CreatedAt); age < 71*time.Hour {
			t.Fatalf("%s: created %s ago, want 3 days: the clocks were not set back", id, age.Round(time.Second))
		}
	}

	// The clocks come back to now; every final notification is refused
	// while an operator re-runs b of each run: each run ends again, its
	// notification owed.
	fin.refuse.Store(true)
	shift.Store(0)
	reopened := time.Now().Add(-2 * skew)
	fin.mu.Lock()
	fin.since = reopened
	fin.mu.Unlock()
	for _, id := range ids {
		if code, out := s.operate("/pipeline/runs/"+id+"/steps/b/enqueue", `{"force":true}`); code != 200 {
			t.Fatalf("%s: force b: %d %s", id, code, out)
		}
	}
	views = waitFor(ids, 2*time.Minute, s.getRun, func(v runView) bool {
		return v.Status == "succeeded" && v.step("b").Generation == 2 && v.consumedLatest() && v.FinishedAt.After(reopened)
	})
	refused := fin.refused.Load()

	// The notifier is back and the clocks move on a minute: the sweeper
	// (each instance's, every 3 s) must send every owed notification.
	shift.Store(int64(time.Minute))
	fin.refuse.Store(false)
	calm := time.Now()
	deadline := calm.Add(time.Minute)
	var missing []string
	for {
		missing = missing[:0]
		fin.mu.Lock()
		for _, id := range ids {
			if fin.sent[id] == 0 {
				missing = append(missing, id)
			}
		}
		fin.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.recovery = time.Since(calm)

	problems := tallyReruns(t, &f, s, ids, views)
	for _, id := range missing {
		f.lost++
		v := views[id]
		problems = append(problems, fmt.Sprintf("lost: %s (created %s, finished again %s) never got its owed final notification from the sweeper",
			id, v.CreatedAt.Format(time.RFC3339), v.FinishedAt.Format(time.RFC3339)))
	}
	twice := 0
	fin.mu.Lock()
	for _, n := range fin.sent {
		twice += max(n-1, 0)
	}
	fin.mu.Unlock()
	f.add("created 72h earlier")
	f.add("finals refused %d", refused)
	f.add("owed sent %d of %d", len(ids)-len(missing), len(ids))
	f.add("handed twice %d", twice)
	check(t, f, problems)
}
