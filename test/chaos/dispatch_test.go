package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Scenario 11: the dispatch connection dropped (gcp). The Cloud Tasks
// emulator delivers step tasks to the service through a TCP proxy that
// resets a share of connections after the service handled the request (the
// reply is lost), resets every open connection periodically (some while a
// body runs or its result is being recorded) and refuses some outright. The emulator sees no answer and
// retries: the service gets a duplicate of a delivery it already completed,
// and must answer it without running the body again. gcp only: the local
// queue hands deliveries to the service's handler in memory, with no
// connection to put a proxy in (its retries after a failed delivery are scenario 4's).
func TestDroppedDispatch(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, true) {
		if backend != "gcp" {
			continue
		}
		t.Run(backend, func(t *testing.T) { droppedDispatch(t, sz) })
	}
}

func droppedDispatch(t *testing.T, sz size) {
	var px *proxy
	s := newStackWith(t, "gcp", chainYAML("20ms"), stackOptions{}, func(s *stack) {
		// Every 3rd reply chunk from the service is dropped (both sides
		// reset), and 5% of the emulator's connections refused.
		px = newDroppingProxy(t, fmt.Sprintf("127.0.0.1:%d", s.port), 0.05, 3)
		s.opts.serviceURL = "http://" + px.addr()
	})
	// And every connection in flight is reset every 70 ms: some during a
	// body, some between a body's end and its result's record (which must
	// not be abandoned with the request).
	stopResets := px.resetEvery(70 * time.Millisecond)
	f := figures{scenario: "dropped-dispatch", backend: "gcp"}
	var ids []string
	began := time.Now()
	for i := range sz.dispatchRuns {
		key := fmt.Sprintf("dd-%d", i)
		f.tried++
		if s.startRun(key) {
			ids = append(ids, "chaos@"+key)
		}
	}
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	stopResets()
	px.calm()
	calm := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	_ = s.emu.WaitIdle(ctx)
	cancel()
	views = waitRuns(ids, time.Minute, s.getRun)
	f.recovery = time.Since(calm)
	if time.Since(began) < f.recovery {
		f.recovery = time.Since(began)
	}
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, nil, nil)
	// A body's result is recorded whatever becomes of the request that
	// carried it (the bookkeeping is detached from it): no attempt may end
	// with its result unrecorded, healed only when its lease expired.
	if lost := unrecordedAttempts(views); lost > 0 {
		t.Errorf("%d attempts ended with no result recorded: a write cancelled with its request left the step leased until its lease expired", lost)
	}
	st := s.emu.Stats()
	f.add("dispatches %d", st.Dispatches)
	f.add("attempts unrecorded %d", unrecordedAttempts(views))
	f.add("unanswered %d", st.ByStatus[0])
	f.add("replies dropped %d", px.dropped.Load())
	f.add("connections refused %d", px.refused.Load())
	f.add("wire resets %d", px.resets.Load())
	check(t, f, problems)
	if px.dropped.Load() == 0 {
		t.Errorf("no reply was dropped: the scenario proved nothing")
	}
}

// unrecordedAttempts counts the attempts, over every step of views, that the
// ledger closed as "no result recorded": a later attempt had to take the
// step over.
func unrecordedAttempts(views map[string]runView) int {
	n := 0
	for _, v := range views {
		for _, st := range v.Steps {
			for _, a := range st.History {
				if strings.HasPrefix(a.Error, "no result recorded") {
					n++
				}
			}
		}
	}
	return n
}
