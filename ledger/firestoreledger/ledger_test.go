package firestoreledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

func TestMain(m *testing.M) { fsemu.Main(m) }

// newLedger is a ledger on its own collection of the emulator, and the
// counter of its Firestore operations.
func newLedger(t testing.TB) (*firestoreledger.Ledger, *fsemu.OpCounter) {
	t.Helper()
	client, ops := fsemu.NewClient(t)
	l := firestoreledger.New(client, fsemu.Collection(t))
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l, ops
}

var t0 = time.Date(2026, 11, 23, 6, 0, 0, 123456000, time.UTC)

func newRun(key string, created time.Time, steps ...string) (pipeline.Run, []pipeline.StepRun) {
	id := pipeline.RunID("daily", key)
	r := pipeline.Run{
		ID: id, Pipeline: "daily", Key: key, Date: key,
		Params: map[string]string{"region": "eu"}, Status: pipeline.RunPending,
		Trigger: "scheduler", CreatedAt: created, UpdatedAt: created,
	}
	var ss []pipeline.StepRun
	for _, s := range steps {
		ss = append(ss, pipeline.StepRun{RunID: id, Step: s, Status: pipeline.StepPending, MaxAttempts: 3, UpdatedAt: created})
	}
	return r, ss
}

func mustCreate(t testing.TB, l pipeline.Ledger, r pipeline.Run, steps []pipeline.StepRun) pipeline.Run {
	t.Helper()
	stored, created, err := l.CreateRun(context.Background(), r, steps)
	if err != nil || !created {
		t.Fatalf("CreateRun(%s) = created %v, %v", r.ID, created, err)
	}
	return stored
}

func getStep(t testing.TB, l pipeline.Ledger, runID, step string) pipeline.StepRun {
	t.Helper()
	ss, err := l.GetSteps(context.Background(), runID, step)
	if err != nil {
		t.Fatalf("GetSteps(%s, %s): %v", runID, step, err)
	}
	return ss[0]
}

func TestCreateRunIsIdempotent(t *testing.T) {
	ctx := context.Background()
	l, _ := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "extract", "load")
	first := mustCreate(t, l, r, steps)
	if first.Version == 0 || first.ID != r.ID || first.Status != pipeline.RunPending || !first.CreatedAt.Equal(t0) {
		t.Fatalf("CreateRun returned %+v", first)
	}

	again := r
	again.Status = pipeline.RunRunning
	again.Trigger = "cli"
	steps[0].Status = pipeline.StepSucceeded
	stored, created, err := l.CreateRun(ctx, again, steps)
	if err != nil || created {
		t.Fatalf("second CreateRun = created %v, %v; want false, nil", created, err)
	}
	if !reflect.DeepEqual(stored, first) {
		t.Errorf("second CreateRun returned\n%+v\nwant the stored run\n%+v", stored, first)
	}
	if got := getStep(t, l, r.ID, "extract"); got.Status != pipeline.StepPending {
		t.Errorf("second CreateRun changed step extract to %s", got.Status)
	}
}

func TestCreateRunIsAtomic(t *testing.T) {
	ctx := context.Background()
	client, _ := fsemu.NewClient(t)
	coll := fsemu.Collection(t)
	l := firestoreledger.New(client, coll)
	r, steps := newRun("2026-11-23", t0, "a", "b", "c")
	// A stray document where step b goes makes the batch fail after the
	// creates of the run and of step a.
	stray := client.Collection(coll).Doc(r.ID).Collection("steps").Doc("b")
	if _, err := stray.Create(ctx, map[string]any{"stray": true}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := l.CreateRun(ctx, r, steps); err == nil || created {
		t.Fatalf("CreateRun over a stray step = created %v, %v; want an error", created, err)
	}
	if _, err := l.GetRun(ctx, r.ID); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("failed CreateRun wrote the run: GetRun = %v", err)
	}
	if _, err := l.GetSteps(ctx, r.ID, "a"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("failed CreateRun wrote step a: GetSteps = %v", err)
	}
}

func TestCreateRunRefusesBadSteps(t *testing.T) {
	ctx := context.Background()
	l, ops := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "a", "b")
	dup := append(steps, steps[0])
	if _, _, err := l.CreateRun(ctx, r, dup); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("CreateRun with a step twice = %v, want ErrInvalid", err)
	}
	foreign := append(steps[:1:1], pipeline.StepRun{RunID: "daily@other", Step: "c"})
	if _, _, err := l.CreateRun(ctx, r, foreign); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("CreateRun with another run's step = %v, want ErrInvalid", err)
	}
	if ops.Writes() != 0 {
		t.Errorf("refused CreateRun wrote %d documents", ops.Writes())
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	l, _ := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "extract", "transform", "load", "report")
	mustCreate(t, l, r, steps)

	got, err := l.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got.Steps {
		names = append(names, s.Step)
		if s.Version == 0 || s.RunID != r.ID || s.Status != pipeline.StepPending || s.MaxAttempts != 3 {
			t.Errorf("step %+v", s)
		}
	}
	if want := []string{"extract", "transform", "load", "report"}; !reflect.DeepEqual(names, want) {
		t.Errorf("GetRun steps in order %v, want %v", names, want)
	}

	s := got.Steps[1]
	s.Status = pipeline.StepSucceeded
	s.Attempts = 2
	s.Generation = 1
	s.StartedAt = t0.Add(time.Second)
	s.FinishedAt = t0.Add(2*time.Second + 789) // nanoseconds: Firestore keeps microseconds
	s.UpdatedAt = s.FinishedAt
	s.Error = "none"
	s.Output = json.RawMessage(`{"rows":42}`)
	s.Forced = true
	updated, err := l.UpdateStep(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if read := getStep(t, l, r.ID, "transform"); !reflect.DeepEqual(read, updated) {
		t.Errorf("UpdateStep returned\n%+v\nbut GetSteps reads\n%+v", updated, read)
	}
	if !updated.FinishedAt.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("FinishedAt = %v, want it at microsecond precision", updated.FinishedAt)
	}

	// Clearing fields clears them.
	updated.Output, updated.Error, updated.FinishedAt, updated.Forced = nil, "", time.Time{}, false
	cleared, err := l.UpdateStep(ctx, updated)
	if err != nil {
		t.Fatal(err)
	}
	if read := getStep(t, l, r.ID, "transform"); !reflect.DeepEqual(read, cleared) || read.Output != nil || !read.FinishedAt.IsZero() {
		t.Errorf("cleared step reads %+v, want %+v", read, cleared)
	}

	run := got
	run.Steps = nil
	run.Status = pipeline.RunSucceeded
	run.FinishedAt = t0.Add(time.Minute)
	run.Notify = pipeline.NotifyPending
	run.Error = "x"
	updatedRun, err := l.UpdateRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	reread, err := l.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(reread.Steps) != 4 {
		t.Errorf("UpdateRun lost steps: %d", len(reread.Steps))
	}
	reread.Steps = nil
	if !reflect.DeepEqual(reread, updatedRun) {
		t.Errorf("UpdateRun returned\n%+v\nbut GetRun reads\n%+v", updatedRun, reread)
	}
}

func TestCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	l, _ := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "a")
	run := mustCreate(t, l, r, steps)
	old := getStep(t, l, r.ID, "a")

	s := old
	s.Status = pipeline.StepRunning
	next, err := l.UpdateStep(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if next.Version == old.Version {
		t.Fatal("UpdateStep kept the version")
	}
	stale := old
	stale.Status = pipeline.StepFailed
	if _, err := l.UpdateStep(ctx, stale); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("UpdateStep with a stale version = %v, want ErrConflict", err)
	}
	if got := getStep(t, l, r.ID, "a"); got.Status != pipeline.StepRunning || got.Version != next.Version {
		t.Errorf("stale UpdateStep changed the step: %+v", got)
	}
	// The same write twice: the second is stale.
	if _, err := l.UpdateStep(ctx, s); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("repeated UpdateStep = %v, want ErrConflict", err)
	}
	// A version never read is a conflict too.
	zero := next
	zero.Version = 0
	if _, err := l.UpdateStep(ctx, zero); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("UpdateStep with version 0 = %v, want ErrConflict", err)
	}

	run.Status = pipeline.RunRunning
	nextRun, err := l.UpdateRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if nextRun.Version == run.Version {
		t.Fatal("UpdateRun kept the version")
	}
	if _, err := l.UpdateRun(ctx, run); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("UpdateRun with a stale version = %v, want ErrConflict", err)
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	l, _ := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "a")
	mustCreate(t, l, r, steps)
	a := getStep(t, l, r.ID, "a")

	checks := map[string]error{}
	_, checks["GetRun"] = l.GetRun(ctx, "daily@nope")
	_, checks["GetSteps missing step"] = l.GetSteps(ctx, r.ID, "a", "nope")
	_, checks["GetSteps missing run"] = l.GetSteps(ctx, "daily@nope", "a")
	missing := a
	missing.Step = "nope"
	_, checks["UpdateStep"] = l.UpdateStep(ctx, missing)
	_, checks["UpdateRun"] = l.UpdateRun(ctx, pipeline.Run{ID: "daily@nope", Version: a.Version})
	// Version 0 must not become a precondition the emulator reads as "missing".
	_, checks["UpdateStep version 0"] = l.UpdateStep(ctx, pipeline.StepRun{RunID: r.ID, Step: "zero"})
	_, checks["UpdateRun version 0"] = l.UpdateRun(ctx, pipeline.Run{ID: "daily@zero"})
	_, checks["GetSteps after version 0"] = l.GetSteps(ctx, r.ID, "zero")
	_, checks["GetRun after version 0"] = l.GetRun(ctx, "daily@zero")
	for what, err := range checks {
		if !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("%s = %v, want ErrNotFound", what, err)
		}
	}
	if _, err := l.GetSteps(ctx, r.ID, "a/b"); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("GetSteps with a slash = %v, want ErrInvalid", err)
	}
}

func TestGetStepsOrderAndDuplicates(t *testing.T) {
	l, _ := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "a", "b", "c")
	mustCreate(t, l, r, steps)
	got, err := l.GetSteps(context.Background(), r.ID, "c", "a", "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Step != "c" || got[1].Step != "a" || got[2].Step != "c" {
		t.Errorf("GetSteps(c, a, c) = %+v", got)
	}
}

func TestListRuns(t *testing.T) {
	ctx := context.Background()
	l, _ := newLedger(t)
	for i := range 5 {
		r, steps := newRun(fmt.Sprintf("2026-11-%02d", 20+i), t0.Add(time.Duration(i)*time.Hour), "a")
		if i%2 == 1 {
			r.Status = pipeline.RunFailed
		}
		mustCreate(t, l, r, steps)
	}
	other, _ := newRun("2026-11-30", t0.Add(10*time.Hour))
	other.Pipeline, other.ID = "weekly", pipeline.RunID("weekly", "2026-11-30")
	mustCreate(t, l, other, nil)

	keys := func(f pipeline.RunFilter) []string {
		t.Helper()
		runs, err := l.ListRuns(ctx, f)
		if err != nil {
			t.Fatalf("ListRuns(%+v): %v", f, err)
		}
		var ks []string
		for _, r := range runs {
			if r.Steps != nil || r.Version == 0 {
				t.Errorf("ListRuns returned %+v", r)
			}
			ks = append(ks, r.ID)
		}
		return ks
	}
	cases := []struct {
		f    pipeline.RunFilter
		want []string
	}{
		{pipeline.RunFilter{}, []string{"weekly@2026-11-30", "daily@2026-11-24", "daily@2026-11-23", "daily@2026-11-22", "daily@2026-11-21", "daily@2026-11-20"}},
		{pipeline.RunFilter{Pipeline: "daily", Limit: 2}, []string{"daily@2026-11-24", "daily@2026-11-23"}},
		{pipeline.RunFilter{Pipeline: "daily", Status: pipeline.RunFailed}, []string{"daily@2026-11-23", "daily@2026-11-21"}},
		{pipeline.RunFilter{Status: pipeline.RunPending, Since: t0.Add(2 * time.Hour)}, []string{"weekly@2026-11-30", "daily@2026-11-24", "daily@2026-11-22"}},
		{pipeline.RunFilter{Pipeline: "nope"}, nil},
	}
	for _, c := range cases {
		if got := keys(c.f); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ListRuns(%+v) = %v, want %v", c.f, got, c.want)
		}
	}
}

// claim is what the orchestrator does on a delivery: read the step and, if
// it is pending, CAS it to running. It reports whether this caller won.
func claim(ctx context.Context, l pipeline.Ledger, runID, step string) (bool, error) {
	ss, err := l.GetSteps(ctx, runID, step)
	if err != nil {
		return false, err
	}
	s := ss[0]
	if s.Status != pipeline.StepPending {
		return false, nil
	}
	s.Status = pipeline.StepRunning
	s.Attempts++
	s.LeaseUntil = time.Now().Add(time.Minute)
	if _, err := l.UpdateStep(ctx, s); errors.Is(err, pipeline.ErrConflict) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}

func TestDuplicateClaimsHaveOneWinner(t *testing.T) {
	ctx := context.Background()
	l, ops := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "a")
	mustCreate(t, l, r, steps)
	ops.Reset()

	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners int
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			won, err := claim(ctx, l, r.ID, "a")
			if err != nil {
				t.Error(err)
			}
			if won {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d duplicate claims in %v: %d commits", n, time.Since(start), ops.Calls("Commit"))
	if winners != 1 {
		t.Fatalf("%d winners, want 1", winners)
	}
	if got := getStep(t, l, r.ID, "a"); got.Status != pipeline.StepRunning || got.Attempts != 1 {
		t.Errorf("step after the claims: %+v", got)
	}
}

func TestParallelStepsDoNotContend(t *testing.T) {
	ctx := context.Background()
	l, ops := newLedger(t)
	const n = 20
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("step-%02d", i)
	}
	r, steps := newRun("2026-11-23", t0, names...)
	mustCreate(t, l, r, steps)
	ops.Reset()

	start := time.Now()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			won, err := claim(ctx, l, r.ID, name)
			if err != nil || !won {
				t.Errorf("claim %s = %v, %v; want a win", name, won, err)
				return
			}
			s := getStep(t, l, r.ID, name)
			s.Status = pipeline.StepSucceeded
			s.FinishedAt = time.Now()
			if _, err := l.UpdateStep(ctx, s); err != nil {
				t.Errorf("complete %s: %v", name, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d parallel steps claimed and completed in %v", n, time.Since(start))
	if got := ops.Calls("Commit"); got != 2*n {
		t.Errorf("%d commits, want %d (no retries, no aborts)", got, 2*n)
	}
	if got := ops.Calls("BeginTransaction"); got != 0 {
		t.Errorf("%d transactions, want none", got)
	}
	run, err := l.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range run.Steps {
		if s.Status != pipeline.StepSucceeded {
			t.Errorf("step %s is %s", s.Step, s.Status)
		}
	}
}

// transition is the ledger traffic of one linear step transition: read the
// step and its predecessor, claim the step, complete it.
func transition(ctx context.Context, l pipeline.Ledger, runID, pred, step string) error {
	ss, err := l.GetSteps(ctx, runID, pred, step)
	if err != nil {
		return err
	}
	s := ss[1]
	s.Status = pipeline.StepRunning
	s.Attempts++
	s, err = l.UpdateStep(ctx, s)
	if err != nil {
		return err
	}
	s.Status = pipeline.StepSucceeded
	_, err = l.UpdateStep(ctx, s)
	return err
}

func TestOperationCounts(t *testing.T) {
	ctx := context.Background()
	l, ops := newLedger(t)
	r, steps := newRun("2026-11-23", t0, "a", "b", "c")

	ops.Reset()
	mustCreate(t, l, r, steps)
	if ops.Reads() != 0 || ops.Writes() != 4 || ops.Calls("Commit") != 1 {
		t.Errorf("CreateRun of 3 steps: %d reads, %d writes, %d commits; want 0, 4, 1", ops.Reads(), ops.Writes(), ops.Calls("Commit"))
	}

	ops.Reset()
	if _, err := l.GetSteps(ctx, r.ID, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if ops.Reads() != 2 || ops.Writes() != 0 || ops.Calls("BatchGetDocuments") != 1 {
		t.Errorf("GetSteps of 2: %d reads, %d writes, %d calls; want 2, 0, 1", ops.Reads(), ops.Writes(), ops.Calls("BatchGetDocuments"))
	}

	s := getStep(t, l, r.ID, "a")
	ops.Reset()
	s.Status = pipeline.StepRunning
	if _, err := l.UpdateStep(ctx, s); err != nil {
		t.Fatal(err)
	}
	if ops.Reads() != 0 || ops.Writes() != 1 {
		t.Errorf("UpdateStep: %d reads, %d writes; want 0, 1", ops.Reads(), ops.Writes())
	}

	ops.Reset()
	if err := transition(ctx, l, r.ID, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if ops.Reads() != 2 || ops.Writes() != 2 {
		t.Errorf("transition: %d reads, %d writes; want 2, 2", ops.Reads(), ops.Writes())
	}
}

func TestOpenHonoursEmulatorHost(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", fsemu.Host(t))
	ctx := context.Background()
	l, err := firestoreledger.Open(ctx, "", "", fsemu.Collection(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, steps := newRun("2026-11-23", t0, "a")
	mustCreate(t, l, r, steps)
	if got, err := l.GetRun(ctx, r.ID); err != nil || len(got.Steps) != 1 {
		t.Fatalf("GetRun = %+v, %v", got, err)
	}
}

// BenchmarkTransition reports the Firestore operations and latency of one
// linear step transition (GetSteps of 2 docs, then 2 UpdateStep).
func BenchmarkTransition(b *testing.B) {
	ctx := context.Background()
	l, ops := newLedger(b)
	names := make([]string, b.N+1)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	// Runs of at most 400 steps (a batch holds 500 writes).
	type pair struct{ run, pred, step string }
	pairs := make([]pair, 0, b.N)
	for lo := 0; lo < b.N; lo += 400 {
		hi := min(lo+400, b.N)
		r, steps := newRun(fmt.Sprintf("k%d", lo), t0, names[lo:hi+1]...)
		mustCreate(b, l, r, steps)
		for i := lo; i < hi; i++ {
			pairs = append(pairs, pair{r.ID, names[i], names[i+1]})
		}
	}
	ops.Reset()
	b.ResetTimer()
	for i := range b.N {
		p := pairs[i]
		if err := transition(ctx, l, p.run, p.pred, p.step); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(ops.Reads())/float64(b.N), "reads/transition")
	b.ReportMetric(float64(ops.Writes())/float64(b.N), "writes/transition")
}
