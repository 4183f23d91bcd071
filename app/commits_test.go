package app

import (
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TestLocalLinearTransitionIsOneCommit runs a chain of no-op steps on the
// local stack as `pipeline serve` wires it and counts the store's commits
// between consecutive steps' deliveries reaching the handler: step N's
// transition (its result, step N+1's task and claim, and the deletion of
// step N's task) is the one commit; step N+1's delivery finds its claim
// handed off and writes none of its own. Nothing else writes meanwhile in a
// lone chain.
func TestLocalLinearTransitionIsOneCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local stack")
	}
	s := startLocalStack(t)
	ct, err := s.chain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// From step 1 on: step 0's interval may share the run's start-up writes.
	for i := 1; i+1 < benchSteps; i++ {
		if n := ct.commits[i+1] - ct.commits[i]; n != 1 {
			t.Errorf("s%d -> s%d: %d commits between the deliveries, want 1 (the transition, with the successor's claim)", i, i+1, n)
		}
	}
}

// TestLocalRunEndIsOneCommitWithTheLastStep: the last step's transition
// writes its result, the run's end and the deletion of its task in one
// commit (pipeline.Finisher). The end's notification is held until the
// step's answer is counted, so that the commit recording it as sent cannot
// fall inside the interval.
func TestLocalRunEndIsOneCommitWithTheLastStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local stack")
	}
	s := startLocalStack(t)
	s.clock.holdEnds = true
	ct, err := s.chain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last := benchSteps - 1
	if n := ct.answeredCommits[last] - ct.commits[last]; n != 1 {
		t.Errorf("s%d's delivery to its answer: %d commits, want 1 (its result with the run's end)", last, n)
	}
}

// passLedger decorates a ledger without changing it, as fault injection does:
// it hides the optional Transitioner.
type passLedger struct{ pipeline.Ledger }

// TestLocalWrappedLedgerFallsBackToSeparateCommits: with the ledger decorated
// (app.WithWrappers), a chain still runs to the end, through the separate
// calls: result, then successor enqueue, then the next claim.
func TestLocalWrappedLedgerFallsBackToSeparateCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local stack")
	}
	s := startLocalStack(t, Wrappers{Ledger: func(l pipeline.Ledger) pipeline.Ledger { return passLedger{l} }})
	if _, ok := s.a.orch.Ledger().(pipeline.Transitioner); ok {
		t.Fatal("a decorated ledger still offers one-commit transitions")
	}
	ct, err := s.chain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The handled task's deletion rides with an enqueue or the flusher, so
	// an interval may hold one commit more; never fewer than three.
	for i := 1; i+1 < benchSteps; i++ {
		if n := ct.commits[i+1] - ct.commits[i]; n < 3 {
			t.Errorf("s%d -> s%d: %d commits between the deliveries, want at least 3 (claim, result, enqueue)", i, i+1, n)
		}
	}
}
