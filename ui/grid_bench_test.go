package ui_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/local"
)

// maxPageBytes is the bound on a page before gzip.
const maxPageBytes = 100 << 10

func TestGridOf30DaysStaysSmall(t *testing.T) {
	e := newEnv(t, 10)
	seedFinished(t, e.led, e.now, 30, 10)
	code, body := e.do(request{path: "/ui/?days=30", token: e.opToken})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if n := strings.Count(body, `data-status="succeeded"`); n != 300 {
		t.Errorf("%d succeeded cells, want 30 days x 10 steps", n)
	}
	if len(body) > maxPageBytes {
		t.Errorf("grid page is %d bytes, over %d", len(body), maxPageBytes)
	}
	t.Logf("grid of 30 days x 10 steps: %d bytes", len(body))
}

// firestoreEnv is the dashboard on the Firestore ledger (emulator), with a
// counter of the document reads.
func firestoreEnv(t testing.TB) (*env, *fsemu.OpCounter) {
	client, counter := fsemu.NewClient(t)
	led := firestoreledger.New(client, fsemu.Collection(t))
	e := &env{t: t, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), led: led, gcpStyle: true}
	db, err := boltledger.OpenDB(filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	q, err := local.New(db, local.Config{QueueName: "unused", Logger: quiet(), BaseURL: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	e.setup(led, q, nil)
	return e, counter
}

// On Firestore the grid reads one document per finished run (its summary),
// and the steps of unfinished runs only.
func TestGridReadsOnFirestore(t *testing.T) {
	e, counter := firestoreEnv(t)
	seedFinished(t, e.led, e.now.AddDate(0, 0, -1), 6, 3) // 6 finished days, 3 steps each (few emulator writes)
	ctx := context.Background()
	today := e.now.Format(time.DateOnly)
	if _, err := e.orch.Start(ctx, pipeline.StartRequest{Pipeline: "web", Date: today}); err != nil {
		t.Fatal(err)
	}
	counter.Reset()
	if _, err := e.led.GetRun(ctx, "web@"+today); err != nil {
		t.Fatal(err)
	}
	unfinished := counter.Reads()
	counter.Reset()
	code, body := e.do(request{path: "/ui/?days=7", token: e.vwToken})
	if code != 200 || strings.Count(body, `data-status="succeeded"`) != 18 {
		t.Fatalf("%d; %d succeeded cells, want 6 x 3\n%s", code, strings.Count(body, `data-status="succeeded"`), body)
	}
	// The listing (one per run) + the running run's steps + the scheduled
	// pipeline's pause mark (one document read even when it does not exist).
	want := int64(6+1) + unfinished + 1
	if got := counter.Reads(); got > want {
		t.Errorf("grid read %d documents, want at most %d (6 finished runs, 1 running run read with its steps: %d, the pause mark: 1)", got, want, unfinished)
	}
	t.Logf("grid of 7 days (6 finished, 1 running with 10 steps): %d reads", counter.Reads())
}

// BenchmarkGrid prints the grid's server time for 30 days x 10 steps on the
// embedded ledger (target < 50 ms) and the reads per page on Firestore.
func BenchmarkGrid(b *testing.B) {
	b.Run("bbolt/30d-10steps", func(b *testing.B) {
		e := newEnv(b, 10)
		seedFinished(b, e.led, e.now, 30, 10)
		b.ResetTimer()
		for b.Loop() {
			if code, _ := e.do(request{path: "/ui/?days=30", token: e.opToken}); code != 200 {
				b.Fatal(code)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	})
	b.Run("firestore/30d-10steps", func(b *testing.B) {
		e, counter := firestoreEnv(b)
		seedFinished(b, e.led, e.now, 30, 10)
		counter.Reset()
		b.ResetTimer()
		for b.Loop() {
			if code, _ := e.do(request{path: "/ui/?days=30", token: e.opToken}); code != 200 {
				b.Fatal(code)
			}
		}
		b.ReportMetric(float64(counter.Reads())/float64(b.N), "reads/page")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	})
}
