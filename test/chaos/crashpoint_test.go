package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

func TestParseCrashPoint(t *testing.T) {
	got, err := ParseCrashPoint("rerun-succeeded:b:20")
	if err != nil || got != (CrashPoint{Point: PointRerunSucceeded, Step: "b", N: 20}) {
		t.Fatalf("ParseCrashPoint: %+v, %v", got, err)
	}
	if got.String() != "rerun-succeeded:b:20" {
		t.Errorf("String: %q", got.String())
	}
	for _, bad := range []string{"", "step-succeeded:d", "step-succeeded:d:1:2", "crashed:d:1", "step-succeeded::1", "step-succeeded:d:0", "step-succeeded:d:x"} {
		if p, err := ParseCrashPoint(bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ParseCrashPoint(%q) = %+v, %v; want an error naming it", bad, p, err)
		}
	}
}

// A crash point over a real ledger: the first matching write of two holds
// its caller, a write of another step or generation passes, the second
// matching write calls crash; every matching write committed.
func TestCrashPointHoldsThenCrashes(t *testing.T) {
	ctx := context.Background()
	inner, err := boltledger.Open(filepath.Join(t.TempDir(), "pipeline.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	crashed := make(chan struct{})
	l := CrashPoint{Point: PointRerunSucceeded, Step: "b", N: 2}.Wrap(inner, log, func() { close(crashed) })
	_, innerTr := any(inner).(pipeline.Transitioner)
	if _, tr := l.(pipeline.Transitioner); tr != innerTr {
		t.Errorf("the decorated ledger is a Transitioner: %v; the inner one: %v", tr, innerTr)
	}
	if ns, ok := l.(pipeline.Namespacer); !ok || ns.Namespace() != inner.Namespace() {
		t.Errorf("the decorated ledger's namespace is not the inner one's")
	}
	var held sync.WaitGroup
	returned := make(chan string, 2)
	succeed := func(run string, gen int) {
		steps, err := inner.GetSteps(ctx, run, "b")
		if err != nil {
			t.Fatal(err)
		}
		s := steps[0]
		s.Status, s.Generation = pipeline.StepSucceeded, gen
		held.Go(func() {
			if _, err := l.UpdateStep(ctx, s); err != nil {
				t.Errorf("UpdateStep %s: %v", run, err)
			}
			returned <- run
		})
	}
	for _, run := range []string{"chaos@r1", "chaos@r2"} {
		r := pipeline.Run{ID: run, Pipeline: "chaos", Key: strings.TrimPrefix(run, "chaos@"), Date: "2026-11-01", Status: pipeline.RunRunning, CreatedAt: time.Now()}
		steps := []pipeline.StepRun{{RunID: run, Step: "b", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 1}}
		if _, _, err := l.CreateRun(ctx, r, steps); err != nil {
			t.Fatal(err)
		}
	}
	// Generation 1 is not a re-run: the write passes.
	steps, _ := inner.GetSteps(ctx, "chaos@r1", "b")
	first := steps[0]
	first.Status = pipeline.StepSucceeded
	if _, err := l.UpdateStep(ctx, first); err != nil {
		t.Fatal(err)
	}
	succeed("chaos@r1", 2)
	succeed("chaos@r2", 2)
	<-crashed
	select {
	case run := <-returned:
		t.Fatalf("UpdateStep of %s returned before the ledger was closed", run)
	default:
	}
	for _, run := range []string{"chaos@r1", "chaos@r2"} {
		if got, err := inner.GetSteps(ctx, run, "b"); err != nil || got[0].Status != pipeline.StepSucceeded || got[0].Generation != 2 {
			t.Errorf("%s b after the crash point: %+v, %v; want succeeded in generation 2", run, got, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	held.Wait()
	if n := strings.Count(log.String(), "committed"); n != 2 {
		t.Errorf("log has %d matches, want 2:\n%s", n, log.String())
	}
}
