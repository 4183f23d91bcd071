package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/pipeline"
)

// ledgerFaultShare is the share of ledger calls faulted: half of it loses the
// reply of a write that landed, or fails a read before it reaches the store.
const ledgerFaultShare = 0.1

// Scenario 5: ledger faults. Writes land but their reply is lost; reads fail
// transiently; on the gcp backend the connection to the Firestore emulator
// also goes through a proxy that refuses some connections and resets all of
// them periodically. Every run must finish with each body run once.
func TestLedgerFaults(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { ledgerFaults(t, backend, sz) })
	}
}

func ledgerFaults(t *testing.T, backend string, sz size) {
	d := newDice(ledgerFaultShare, uint64(time.Now().UnixNano()))
	var fl *faultyLedger
	opts := stackOptions{wrap: app.Wrappers{Ledger: func(l pipeline.Ledger) pipeline.Ledger {
		fl = &faultyLedger{Ledger: l, d: d}
		// A run makes a dozen ledger writes: with a 10 % share, three
		// runs' worth could pass without a lost reply (2 % of the time).
		fl.loseStepReply.Store(true)
		fl.failRead.Store(true)
		return fl
	}}}
	var px *proxy
	if backend == "gcp" {
		px = newProxy(t, fsemu.Host(t), 0.05)
		opts.firestoreHost = px.addr()
	}
	s := newStack(t, backend, strings.ReplaceAll(chainYAML("10ms"), "timeout: 5s", "timeout: 2s"), opts) // short leases: a lost claim reply costs one lease
	var stopResets func()
	if px != nil {
		stopResets = px.resetEvery(2 * time.Second)
	}
	f := figures{scenario: "ledger-faults", backend: backend}
	var ids []string
	runs := max(1, sz.faultRuns/2)
	for i := range runs {
		key := fmt.Sprintf("lf-%d", i)
		f.tried++
		if s.startRun(key) {
			ids = append(ids, "chaos@"+key)
		}
	}
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	d.off.Store(true)
	if px != nil {
		stopResets()
		px.calm()
	}
	calm := time.Now()
	views = waitRuns(ids, 2*time.Minute, s.getRun)
	f.recovery = time.Since(calm)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, nil, nil)
	f.add("writes %d", fl.writes.Load())
	f.add("replies lost %d", fl.lostReplies.Load())
	f.add("reads %d", fl.reads.Load())
	f.add("reads failed %d", fl.readFaults.Load())
	if px != nil {
		f.add("wire resets %d", px.resets.Load())
		f.add("connections refused %d", px.refused.Load())
	}
	check(t, f, problems)
	if fl.lostReplies.Load() == 0 || fl.readFaults.Load() == 0 {
		t.Errorf("no fault of one kind was injected (lost replies %d, failed reads %d): the scenario proved nothing", fl.lostReplies.Load(), fl.readFaults.Load())
	}
}
