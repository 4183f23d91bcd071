package firestoreledger_test

import (
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/pipeline/ledgertest"
)

func TestContract(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) pipeline.Ledger {
		l, _ := newLedger(t)
		return l
	})
}
