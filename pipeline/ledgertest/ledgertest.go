// Package ledgertest is the contract suite that every pipeline.Ledger backend
// must pass. A backend's test calls Run with a constructor:
//
//	func TestContract(t *testing.T) {
//		ledgertest.Run(t, func(t *testing.T) pipeline.Ledger { return openLedger(t) })
//	}
//
// Each subtest calls newLedger once and uses its own fresh pipeline names and
// run IDs, and creation times in a region of its own far in the future, so a
// constructor may hand out one shared store (an emulator) as well as a fresh
// one. The suite does not close the ledger it is given: newLedger should
// register its own cleanup. Concurrency stays moderate (at most 50 goroutines)
// so that emulators keep up.
package ledgertest

import (
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Run checks every promise of the pipeline.Ledger contract against the ledgers
// newLedger returns.
func Run(t *testing.T, newLedger func(t *testing.T) pipeline.Ledger) {
	t.Helper()
	s := suite{newLedger: newLedger}
	t.Run("CreateRun", s.testCreateRun)
	t.Run("Read", s.testRead)
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("UpdateStep", s.testUpdateStep)
	t.Run("UpdateRun", s.testUpdateRun)
	t.Run("Concurrency", s.testConcurrency)
	t.Run("ListRuns", s.testListRuns)
	t.Run("ListRunsOrder", s.testListOrder)
	t.Run("NotifyPending", s.testNotifyPending)
	t.Run("Marks", s.testMarks)
	t.Run("Definition", s.testDefinition)
	t.Run("WriteID", s.testWriteID)
	t.Run("History", s.testHistory)
	t.Run("HandOff", s.testHandOff)
}

type suite struct {
	newLedger func(t *testing.T) pipeline.Ledger
}
