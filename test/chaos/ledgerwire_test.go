package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/internal/fsemu"
)

// The same on the wire, on the gcp backend: the proxy before the Firestore
// emulator drops every 25th chunk of the server's replies (the Commit landed; the
// client sees the connection reset and retries it). No decorator faults, and
// every step allows one attempt only: a write whose reply was lost must be
// recognised as the caller's own, not taken for a concurrent claim (which
// would leave the lease held by nobody and fail the step without a body).
func TestLedgerLostRepliesOnTheWire(t *testing.T) {
	sz := chaosSize(t)
	px := newDroppingProxy(t, fsemu.Host(t), 0, 25)
	yaml := `name: chaos
time_zone: UTC
steps:
  - {name: a, kind: chaos, after: [], timeout: 5s, max_attempts: 1, chaos: {sleep: 10ms}}
  - {name: b, kind: chaos, after: [a], timeout: 5s, max_attempts: 1, chaos: {sleep: 10ms}}
  - {name: c, kind: chaos, after: [a], timeout: 5s, max_attempts: 1, chaos: {sleep: 10ms}}
  - {name: d, kind: chaos, after: [b, c], timeout: 5s, max_attempts: 1, chaos: {sleep: 10ms}}
`
	s := newStack(t, "gcp", yaml, stackOptions{firestoreHost: px.addr()})
	f := figures{scenario: "ledger-lost-replies-wire", backend: "gcp"}
	var ids []string
	for i := range max(1, sz.faultRuns/2) {
		key := fmt.Sprintf("lw-%d", i)
		f.tried++
		if s.startRun(key) {
			ids = append(ids, "chaos@"+key)
		}
	}
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	px.calm()
	calm := time.Now()
	views = waitRuns(ids, 2*time.Minute, s.getRun)
	f.recovery = time.Since(calm)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, nil, nil)
	f.add("replies dropped %d", px.dropped.Load())
	check(t, f, problems)
	if px.dropped.Load() == 0 {
		t.Errorf("no reply was dropped: the scenario proved nothing")
	}
}
