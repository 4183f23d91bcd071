package pipeline_test

import (
	"testing"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

func TestMain(m *testing.M) { fsemu.Main(m) }

// onEachLedger runs f against the embedded bbolt ledger and the Firestore
// ledger on the emulator (skipped when no emulator can be had, except in CI).
func onEachLedger(t *testing.T, f func(t *testing.T, led pipeline.Ledger)) {
	t.Helper()
	t.Run("bbolt", func(t *testing.T) {
		led, err := boltledger.Open(t.TempDir() + "/ledger.db")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { led.Close() })
		f(t, led)
	})
	t.Run("firestore", func(t *testing.T) {
		client, _ := fsemu.NewClient(t)
		f(t, firestoreledger.New(client, fsemu.Collection(t)))
	})
}
