package pipeline_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

func TestMain(m *testing.M) { fsemu.Main(m) }

// onEachLedger runs test on a harness over the bbolt ledger and on one over
// the Firestore ledger (on the emulator, in a collection of its own).
func onEachLedger(t *testing.T, yamlText string, test func(t *testing.T, h *harness), extra ...pipeline.Notifier) {
	t.Run("bbolt", func(t *testing.T) { test(t, newHarness(t, yamlText, extra...)) })
	t.Run("firestore", func(t *testing.T) {
		h := newHarness(t, yamlText, extra...)
		client, _ := fsemu.NewClient(t)
		led := firestoreledger.New(client, fsemu.Collection(t))
		t.Cleanup(func() { _ = led.Close() })
		notifiers := append(pipeline.Notifiers{h.events}, extra...)
		orch, err := pipeline.New(pipeline.Config{
			Catalog: h.orch.Catalog(), Ledger: led, Queue: h.queue, Notifier: notifiers,
			Now: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		h.ledger, h.orch = led, orch
		test(t, h)
	})
}

// onEachLedgerStore runs f against the embedded bbolt ledger and the
// Firestore ledger on the emulator (skipped when no emulator can be had,
// except in CI).
func onEachLedgerStore(t *testing.T, f func(t *testing.T, led pipeline.Ledger)) {
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
