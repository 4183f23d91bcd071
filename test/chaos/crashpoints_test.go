package chaos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ctapi "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"go.etcd.io/bbolt"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Scenario 13: crash points. The chaos-pipeline binary kills itself with
// SIGKILL right after chosen ledger writes have committed (CHAOS_CRASH_POINT,
// crashpoint.go); while it is down the queued tasks that would heal the runs
// are removed (the local queue's task bucket in the data file; the Cloud Tasks
// emulator's tasks through its gRPC API), so that only the sweeper
// (POST /pipeline/reconcile, called every few seconds) can finish them once
// the service is back on the same store:
//
//   - step-succeeded on d, the chain's last step: its success is recorded,
//     the run is not finished (the sweeper must finish a running run whose
//     steps all ended);
//   - rerun-succeeded on b: the runs succeeded, an operator forced b, and
//     b's re-run's success is recorded but d, which consumed b's previous
//     output, is not re-run yet (the sweeper must re-run d, not finish the
//     run: every step succeeded, one on a superseded input).
//
// Each round arms the point for its n runs: the first n-1 matching writes hold
// their caller (as if the process had died there), the nth kills the
// process, so all n runs are in the state at one kill. At the end every run
// succeeded, no body ran again beyond those in flight at a kill and the
// re-runs asked for, and every step of every run consumed its predecessors'
// latest generations; in the re-run rounds d ran again.
func TestCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { crashPoints(t, backend, sz) })
	}
}

// crashPointYAML is the chain a → b, c → d with short bodies and a long
// timeout: a caller held at a crash point stays within its delivery's
// deadline (timeout + lease grace / 2), so the queue does not deliver its
// task again before the kill.
const crashPointYAML = `name: chaos
time_zone: UTC
steps:
  - {name: a, kind: chaos, after: [], timeout: 1m, max_attempts: 10, chaos: {sleep: 20ms}}
  - {name: b, kind: chaos, after: [a], timeout: 1m, max_attempts: 10, chaos: {sleep: 20ms}}
  - {name: c, kind: chaos, after: [a], timeout: 1m, max_attempts: 10, chaos: {sleep: 20ms}}
  - {name: d, kind: chaos, after: [b, c], timeout: 1m, max_attempts: 10, chaos: {sleep: 20ms}}
`

func crashPoints(t *testing.T, backend string, sz size) {
	t.Setenv(CrashPointEnv, "")
	s := newStack(t, backend, crashPointYAML, stackOptions{binary: true})
	f := figures{scenario: "crash-points", backend: backend}
	var ids, rerunIDs []string
	allowed := map[string]int{}
	var problems []string
	perRound := max(1, sz.crashPointRuns/sz.crashPointKills)
	kills, removed := 0, 0
	for _, point := range []CrashPoint{{Point: PointStepSucceeded, Step: "d"}, {Point: PointRerunSucceeded, Step: "b"}} {
		next := 0
		for round := range sz.crashPointKills {
			n := perRound
			if round == sz.crashPointKills-1 {
				n = sz.crashPointRuns - next
			}
			var keys []string
			for range n {
				keys = append(keys, fmt.Sprintf("%s-%d", point.Point, next))
				next++
			}
			point.N = n
			s.rearm(point)
			cr := &crashRound{s: s, point: point, keys: keys}
			if point.Point == PointRerunSucceeded {
				cr.succeedThenForce("b")
			} else {
				cr.start()
			}
			if err := s.waitCrash(2 * time.Minute); err != nil {
				t.Fatalf("crash point %s: %v\n%s", point, err, tail(s.logs.String(), 4000))
			}
			kills++
			k, err := s.removeTasks()
			if err != nil {
				t.Fatalf("remove the queued tasks: %v", err)
			}
			removed += k
			t.Setenv(CrashPointEnv, "")
			s.start()
			restarted := time.Now()
			f.tried += len(keys)
			acked := cr.acknowledged()
			problems = append(problems, cr.problems...)
			waitRuns(acked, 2*time.Minute, s.getRun)
			f.recovery = max(f.recovery, time.Since(restarted))
			ids = append(ids, acked...)
			if point.Point == PointRerunSucceeded {
				rerunIDs = append(rerunIDs, acked...)
				for _, id := range acked {
					allowed[id+"|b"]++ // the operator's force
					allowed[id+"|d"]++ // d on b's new output
				}
			}
		}
	}
	views := waitRuns(ids, time.Minute, s.getRun)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems = append(problems, tally(t, &f, ids, views, bodies, s.interrupted, allowed)...)
	for _, id := range ids {
		if v, ok := views[id]; ok && v.terminal() && !v.consumedLatest() {
			f.stuck++
			problems = append(problems, fmt.Sprintf("stale: %s ended %s with a step on a superseded input: %+v", id, v.Status, v.Steps))
		}
	}
	dEnds := map[string]int{}
	for _, b := range bodies {
		if b.Event == "end" && b.Step == "d" {
			dEnds[b.RunID]++
		}
	}
	rerunD := 0
	for _, id := range rerunIDs {
		if v := views[id]; v.step("d").Generation >= 2 && dEnds[id] >= 2 {
			rerunD++
		} else {
			problems = append(problems, fmt.Sprintf("%s: d did not run again after b's re-run (generation %d, %d completed bodies)", id, v.step("d").Generation, dEnds[id]))
		}
	}
	f.add("kills %d", kills)
	// The states reached: the writes the crash points matched (logged by
	// the killed processes before holding their caller or crashing).
	logs := s.logs.String()
	f.add("%s d %d", PointStepSucceeded, strings.Count(logs, "chaos crash point "+PointStepSucceeded+":d:"))
	f.add("%s b %d", PointRerunSucceeded, strings.Count(logs, "chaos crash point "+PointRerunSucceeded+":b:"))
	f.add("d re-run %d", rerunD)
	f.add("tasks removed %d", removed)
	if rerunD != len(rerunIDs) {
		t.Errorf("crash-points %s: d re-ran in %d of %d runs whose b was re-run", backend, rerunD, len(rerunIDs))
	}
	check(t, f, problems)
}

// crashRound is one round of runs that ends in a crash point's kill.
type crashRound struct {
	s     *stack
	point CrashPoint
	keys  []string
	// wg waits for requests that may have been in flight at the kill:
	// they are retried (idempotent starts) or looked at after the restart.
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    []string
	problems []string
}

// start starts the round's runs, each in its own goroutine: the kill may
// come before a start's reply, and the start is then retried on the
// restarted service (a start of a run that exists is a no-op).
func (r *crashRound) start() {
	for _, key := range r.keys {
		r.wg.Go(func() {
			if r.s.startRun(key) {
				r.mu.Lock()
				r.acked = append(r.acked, "chaos@"+key)
				r.mu.Unlock()
			}
		})
	}
}

// succeedThenForce starts the round's runs, waits until they succeeded, then
// forces step (a re-run, not --only) in each. A force whose reply was lost in
// the kill is not sent again: its write is checked after the restart.
func (r *crashRound) succeedThenForce(step string) {
	r.start()
	r.wg.Wait()
	views := waitRuns(r.acked, 2*time.Minute, r.s.getRun)
	for _, id := range r.acked {
		if v := views[id]; v.Status != "succeeded" {
			r.problems = append(r.problems, fmt.Sprintf("%s: %s before the force (%s)", id, v.Status, v.Error))
			continue
		}
		r.wg.Go(func() {
			code, body, err := r.s.do("POST", "/pipeline/runs/"+id+"/steps/"+step+"/enqueue", operatorSA, []byte(`{"force":true}`), nil)
			if err == nil && code != 200 {
				r.mu.Lock()
				r.problems = append(r.problems, fmt.Sprintf("%s: force %s: %d %s", id, step, code, body))
				r.mu.Unlock()
			}
		})
	}
}

// acknowledged waits for the round's requests and returns the runs the
// service acknowledged.
func (r *crashRound) acknowledged() []string {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.acked...)
}

// rearm restarts the (idle) service with the crash point p armed. Every body
// of the stopped process had ended: its pid does not count as interrupted.
func (s *stack) rearm(p CrashPoint) {
	s.t.Helper()
	if s.proc != nil {
		pid := s.proc.Process.Pid
		s.signal(syscall.SIGTERM)
		delete(s.interrupted, pid)
	}
	s.t.Setenv(CrashPointEnv, p.String())
	s.start()
}

// waitCrash waits for the process to kill itself at its crash point; its
// bodies in flight may run again.
func (s *stack) waitCrash(within time.Duration) error {
	pid := s.proc.Process.Pid
	select {
	case err := <-s.done:
		s.interrupted[pid] = true
		s.proc = nil
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return fmt.Errorf("the service exited with %v, not killed", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			return fmt.Errorf("the service exited with %v, not killed", err)
		}
		return nil
	case <-time.After(within):
		return fmt.Errorf("the crash point was not reached within %s", within)
	}
}

// localTasksBucket is the local queue's bucket of pending tasks in the data
// file (queue/local, store.go).
var localTasksBucket = []byte("queue_tasks")

// removeTasks deletes every queued task while the service is down: on the
// local backend from the queue's bucket in the data file, on gcp through the
// Cloud Tasks emulator's API (list, delete). It returns how many.
func (s *stack) removeTasks() (int, error) {
	if s.backend != "gcp" {
		db, err := bbolt.Open(filepath.Join(s.data, "pipeline.db"), 0o600, &bbolt.Options{Timeout: 10 * time.Second})
		if err != nil {
			return 0, fmt.Errorf("open the data file: %w", err)
		}
		n := 0
		err = db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(localTasksBucket)
			if b == nil {
				return fmt.Errorf("no bucket %s", localTasksBucket)
			}
			var names [][]byte
			if err := b.ForEach(func(k, _ []byte) error {
				names = append(names, append([]byte(nil), k...))
				return nil
			}); err != nil {
				return err
			}
			for _, k := range names {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n = len(names)
			return nil
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		return n, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ctapi.NewClient(ctx, option.WithEndpoint(s.emu.Addr()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return 0, fmt.Errorf("cloud tasks client: %w", err)
	}
	defer c.Close()
	var names []string
	it := c.ListTasks(ctx, &cloudtaskspb.ListTasksRequest{Parent: "projects/demo-chaos/locations/local/queues/chaos"})
	for {
		task, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("list tasks: %w", err)
		}
		names = append(names, task.GetName())
	}
	for _, name := range names {
		if err := c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: name}); err != nil && status.Code(err) != codes.NotFound {
			return 0, fmt.Errorf("delete task %s: %w", name, err)
		}
	}
	return len(names), nil
}
