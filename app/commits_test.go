package app

import "testing"

// TestLocalLinearTransitionIsOneCommit runs a chain of no-op steps on the
// local stack as `pipeline serve` wires it and counts the store's commits
// between consecutive steps' claims: step N's transition (its result, step
// N+1's task and the deletion of step N's task, one commit) and step N+1's
// claim (one commit). Nothing else writes meanwhile in a lone chain.
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
		if n := ct.commits[i+1] - ct.commits[i]; n != 2 {
			t.Errorf("s%d -> s%d: %d commits between the claims, want 2 (transition + claim)", i, i+1, n)
		}
	}
}
