package app

// Benchmarks that print the local-mode performance figures of docs/design.md
// ("Performance targets"). They run the real stack: orchestrator, Echo HTTP
// handler, local queue delivering to it (HTTP requests in memory), bbolt ledger with
// fsync, auth on with the local issuer, as `pipeline serve` wires it. They
// assert nothing about time; see docs/performance.md for how to run them.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// benchSteps is the length of the benchmark chain.
const benchSteps = 10

// benchPipelineYAML is a linear chain of benchSteps no-op steps of the kind
// `stamp` (registerStamp): each records when its body started.
func benchPipelineYAML() string {
	var sb strings.Builder
	sb.WriteString("name: bench\ntime_zone: UTC\nsteps:\n")
	for i := range benchSteps {
		fmt.Fprintf(&sb, "  - name: s%d\n    kind: stamp\n", i)
	}
	return sb.String()
}

// chainTimes holds, for one run, when each step's delivery reached the HTTP
// handler (arrived), when its body started (started: the step's own first
// instruction, as a peer's handler start) and when the handler answered.
type chainTimes struct {
	arrived, started, answered [benchSteps]time.Time
	// commits is the local store's commit count when each step's delivery
	// reached the handler (read there, before the claim: notifications are
	// sent in the background, so a count read by the notifier is late).
	commits [benchSteps]uint64
	// answeredCommits is the commit count when each step's handler
	// answered.
	answeredCommits [benchSteps]uint64
	// done is closed once the run ended and its last step's answer is
	// recorded (in either order): then every field above is written.
	done  chan struct{}
	ended bool
	// status and runErr are the run's end as its end event carried it (the
	// run as its last commit stored it).
	status pipeline.RunStatus
	runErr string
}

// maybeDone closes ct.done when the run ended and every answer is in; the
// clock's mutex is held.
func (ct *chainTimes) maybeDone() {
	if !ct.ended || ct.answered[benchSteps-1].IsZero() {
		return
	}
	select {
	case <-ct.done:
	default:
		close(ct.done)
	}
}

// clock records the timestamps of the runs it is told about, through a
// notifier (started, run end) and a wrapper around the HTTP handler (arrived,
// answered).
type clock struct {
	mu    sync.Mutex
	runs  map[string]*chainTimes
	tasks map[string]taskRef // task name -> run and step index
	// taskName names a step's task as the service does.
	taskName func(runID, step string, gen int) string
	// commits reads the local store's commit count.
	commits func() uint64
	// holdEnds, if set, holds a run's end notification (and so the commit
	// that records it as sent) until its last step's answer is recorded;
	// answered is signalled on each answer.
	holdEnds bool
	answered *sync.Cond
}

type taskRef struct {
	run *chainTimes
	i   int
}

func newClock() *clock {
	c := &clock{runs: map[string]*chainTimes{}, tasks: map[string]taskRef{}, taskName: pipeline.TaskName}
	c.answered = sync.NewCond(&c.mu)
	return c
}

// expect registers a run before it is started.
func (c *clock) expect(runID string) *chainTimes {
	ct := &chainTimes{done: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[runID] = ct
	for i := range benchSteps {
		c.tasks[c.taskName(runID, fmt.Sprintf("s%d", i), 1)] = taskRef{ct, i}
	}
	return ct
}

func stepIndex(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "s"))
	if err != nil || i < 0 || i >= benchSteps {
		return -1
	}
	return i
}

func (c *clock) notify(_ context.Context, e pipeline.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.runs[e.Run.ID]
	if ct == nil {
		return nil
	}
	if e.Step == nil && e.Run.Status.Terminal() {
		for c.holdEnds && ct.answered[benchSteps-1].IsZero() {
			c.answered.Wait()
		}
		ct.ended, ct.status, ct.runErr = true, e.Run.Status, e.Run.Error
		ct.maybeDone()
	}
	return nil
}

// runEnds is the clock's notifier: it wants only the ends of runs (a
// notifier that takes every kind would have the service queue each step's
// events for it, which the default log notifier alone does not).
type runEnds struct{ c *clock }

var _ pipeline.EventFilter = runEnds{}

func (r runEnds) Wants(k pipeline.EventKind) bool {
	return k == pipeline.EventRunSucceeded || k == pipeline.EventRunFailed || k == pipeline.EventRunCancelled
}

func (r runEnds) Notify(ctx context.Context, e pipeline.Event) error { return r.c.notify(ctx, e) }

// bodyStarted records that step's body of run started at.
func (c *clock) bodyStarted(at time.Time, runID, step string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct := c.runs[runID]; ct != nil {
		if i := stepIndex(step); i >= 0 && ct.started[i].IsZero() {
			ct.started[i] = at
		}
	}
}

// registerStamp registers the kind `stamp`: a no-op step that tells c when
// its body started.
func (c *clock) registerStamp(reg *steps.Registry, _ *Config) {
	reg.Register("stamp", func(settings map[string]any) (steps.Step, error) {
		if err := steps.ReadSettings("stamp", settings).Err(); err != nil {
			return nil, err
		}
		return steps.StepFunc(func(_ context.Context, in steps.Input) (json.RawMessage, error) {
			c.bodyStarted(time.Now(), in.RunID, in.Step)
			return nil, nil
		}), nil
	})
}

func (c *clock) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		name := r.Header.Get("X-CloudTasks-TaskName")
		// The arrival is recorded before the handler runs: the run's end,
		// which the reader waits for, comes after its last step's arrival.
		c.mu.Lock()
		ref, first := c.tasks[name]
		first = first && name != "" && ref.run.arrived[ref.i].IsZero()
		if first {
			ref.run.arrived[ref.i] = at
			if c.commits != nil {
				ref.run.commits[ref.i] = c.commits()
			}
		}
		c.mu.Unlock()
		h.ServeHTTP(w, r)
		answered := time.Now()
		if first {
			c.mu.Lock()
			ref.run.answered[ref.i] = answered
			if c.commits != nil {
				ref.run.answeredCommits[ref.i] = c.commits()
			}
			ref.run.maybeDone()
			if c.answered != nil {
				c.answered.Broadcast()
			}
			c.mu.Unlock()
		}
	})
}

// localStack is the service as `pipeline serve` runs it in local mode, on a
// loopback port, with a fresh data directory.
type localStack struct {
	a     *app
	clock *clock
	seq   atomic.Int64
}

func startLocalStack(b testing.TB, wrap ...Wrappers) *localStack {
	b.Helper()
	dir := b.TempDir()
	file := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(file, []byte(benchPipelineYAML()), 0o644); err != nil {
		b.Fatal(err)
	}
	s := &localStack{clock: newClock()}
	// The garbage collector's target serve runs with on this backend
	// (tuneGC): the benchmarks, and the tests that use this stack, run the
	// service as it runs.
	_, restoreGC := tuneGC("local", os.Getenv("GOGC") != "")
	b.Cleanup(restoreGC)
	cfg := &Config{File: []string{file}, Backend: "local", Data: filepath.Join(dir, "data"), Auth: "on", LogLevel: "info", LeaseGrace: durationOf(30 * time.Second),
		stepSets: append(exampleSteps(), s.clock.registerStamp)}
	for _, w := range wrap {
		cfg.wrap = w
	}
	// The real JSON logger at the default level; only the write is discarded.
	log := newLogger(cfg, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := buildApp(ctx, cfg, log, runEnds{s.clock})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	s.a = a
	s.clock.taskName = a.orch.TaskName // names carry the ledger's namespace
	s.clock.commits = a.localCommits
	a.handler = s.clock.wrap(a.handler)
	ln, err := a.listen("127.0.0.1:0")
	if err != nil {
		cancel()
		a.close()
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx, ln, nil) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("serve: %v", err)
		}
		a.close()
	})
	return s
}

// chain starts one run over HTTP (as the CLI does) and waits for its end.
func (s *localStack) chain(ctx context.Context) (*chainTimes, error) {
	key := fmt.Sprintf("k%d", s.seq.Add(1))
	ct := s.clock.expect(pipeline.RunID("bench", key))
	res, err := s.a.start(ctx, pipeline.StartRequest{Pipeline: "bench", Key: key})
	if err != nil {
		return nil, err
	}
	select {
	case <-ct.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("run %s did not end within a minute", res.Run.ID)
	}
	// The run's end as stored, from its end event (a read of the run here
	// would add a whole run's read per chain to the figures; the peers'
	// harness reads nothing back either).
	s.clock.mu.Lock()
	status, runErr := ct.status, ct.runErr
	s.clock.mu.Unlock()
	if status != pipeline.RunSucceeded {
		return nil, fmt.Errorf("run %s ended %s: %s", res.Run.ID, status, runErr)
	}
	return ct, nil
}

// between times n bare commits, out of b's timer and of cost, once the
// stack has no write left of the chains that ended: a chain's end event
// comes before its final notification is recorded, and a bare commit
// sharing the disk with that write would be slower than the floor. The wait
// itself is counted: the stack is finishing the chains' work.
func (s *localStack) between(b *testing.B, meter *commitMeter, cost *stepCost, n int) {
	b.Helper()
	if meter.db == nil {
		return // timing none
	}
	if err := s.a.orch.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	defer b.StartTimer()
	cost.pause()
	defer cost.resume()
	// Nor with a collection of the stack's garbage under way.
	runtime.GC()
	meter.measure(b, n)
}

// latencies gathers, over chains, the step-to-step intervals and their parts.
type latencies struct {
	stepToStep []time.Duration // started[i] -> started[i+1]: body start to body start
	claim      []time.Duration // arrived[i] -> started[i]: auth, decode, read, claim (if not handed off)
	finish     []time.Duration // started[i] -> answered[i]: body, transition commit
	queue      []time.Duration // answered[i] -> arrived[i+1]: queue dispatch and delivery
}

func (l *latencies) add(ct *chainTimes) {
	for i := range benchSteps {
		l.claim = append(l.claim, ct.started[i].Sub(ct.arrived[i]))
		l.finish = append(l.finish, ct.answered[i].Sub(ct.started[i]))
		if i+1 < benchSteps {
			l.stepToStep = append(l.stepToStep, ct.started[i+1].Sub(ct.started[i]))
			l.queue = append(l.queue, ct.arrived[i+1].Sub(ct.answered[i]))
		}
	}
}

func quantileMS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(float64(len(s))*q))]) / float64(time.Millisecond)
}

func (l *latencies) report(b *testing.B) {
	b.ReportMetric(quantileMS(l.stepToStep, 0.50), "p50_ms")
	b.ReportMetric(quantileMS(l.stepToStep, 0.99), "p99_ms")
	b.ReportMetric(quantileMS(l.claim, 0.50), "claim_p50_ms")
	b.ReportMetric(quantileMS(l.finish, 0.50), "finish_p50_ms")
	b.ReportMetric(quantileMS(l.queue, 0.50), "queue_p50_ms")
}

// BenchmarkLocalStepToStep runs chains of 10 no-op steps one at a time and
// reports the step-to-step latency: from step N's body start to step N+1's
// (handler start to handler start, as bench/peers measures the peers). Its
// parts are reported too: claim (delivery
// arrival to the claim held: committed by the delivery, or found handed off
// by the predecessor's transition), finish (claim to the handler's answer:
// body, transition commit) and queue (answer to the next delivery's
// arrival). ns/op is one whole chain.
func BenchmarkLocalStepToStep(b *testing.B) {
	if testing.Short() {
		b.Skip("runs the whole local stack")
	}
	s := startLocalStack(b)
	ctx := b.Context()
	if _, err := s.chain(ctx); err != nil { // warm up: connections, token
		b.Fatal(err)
	}
	var l latencies
	meter := newCommitMeter(b)
	meter.measure(b, bareCommitsAround)
	cost := s.startCost()
	chains := 0
	for b.Loop() {
		ct, err := s.chain(ctx)
		if err != nil {
			b.Fatal(err)
		}
		l.add(ct)
		chains++
		// Bare commits after every tenth chain (about a third of the ten
		// chains' time, not timed): the floor as it is while they run.
		if chains%10 == 0 {
			s.between(b, meter, cost, 30)
		}
	}
	cost.report(b, chains*benchSteps)
	l.report(b)
	meter.measure(b, bareCommitsAround)
	if bare, ok := meter.median(); ok {
		b.ReportMetric(float64(bare)/float64(time.Millisecond), "bare_commit_ms")
		b.ReportMetric(quantileMS(l.stepToStep, 0.50)/(float64(bare)/float64(time.Millisecond)), "p50_per_commit")
	}
}

// BenchmarkLocalChainsConcurrency50 runs 200 chains of 10 no-op steps with 50
// in flight at a time (each of 50 workers starts a chain and waits for its end)
// and reports step transitions per second, and step-to-step latency under
// that load. ns/op is one batch of 200 chains.
func BenchmarkLocalChainsConcurrency50(b *testing.B) { benchChains(b, 50) }

// BenchmarkLocalChainsConcurrency10 is BenchmarkLocalChainsConcurrency50 with
// 10 chains in flight.
func BenchmarkLocalChainsConcurrency10(b *testing.B) { benchChains(b, 10) }

func benchChains(b *testing.B, workers int) {
	if testing.Short() {
		b.Skip("runs the whole local stack")
	}
	const chains = 200
	s := startLocalStack(b)
	ctx := b.Context()
	if _, err := s.chain(ctx); err != nil {
		b.Fatal(err)
	}
	var (
		l       latencies
		steps   int
		elapsed time.Duration
	)
	meter := newCommitMeter(b)
	meter.measure(b, bareCommitsAround)
	cost := s.startCost()
	for b.Loop() {
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			left atomic.Int64
		)
		left.Store(chains)
		t0 := time.Now()
		for range workers {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					ct, err := s.chain(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					l.add(ct)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed += time.Since(t0)
		steps += chains * benchSteps
		s.between(b, meter, cost, 30)
	}
	cost.report(b, steps)
	rate := float64(steps) / elapsed.Seconds()
	b.ReportMetric(rate, "transitions/s")
	l.report(b)
	meter.measure(b, bareCommitsAround)
	if bare, ok := meter.median(); ok {
		b.ReportMetric(float64(bare)/float64(time.Millisecond), "bare_commit_ms")
		b.ReportMetric(rate*bare.Seconds(), "steps_per_commit_time")
	}
}

// stepCost is a reading of the process's CPU time, allocations and the local
// store's commits, to report per step as a difference of two readings. CPU
// and allocations include the benchmark's own client (a start request per
// chain), a small share of a chain's ten steps. What is done between pause
// and resume (the bare commits timed between iterations) is left out.
type stepCost struct {
	s                        *localStack
	cpu                      time.Duration
	mallocs, bytes           uint64
	commits                  uint64
	paused                   *stepCost // the reading at pause, until resume
	pauseCPU                 time.Duration
	pauseMallocs, pauseBytes uint64
}

// reading is the process's CPU time, allocations and the store's commits now.
func (s *localStack) reading() stepCost {
	c := stepCost{s: s, cpu: cpuTime(), commits: s.a.localCommits()}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	c.mallocs, c.bytes = m.Mallocs, m.TotalAlloc
	return c
}

func (s *localStack) startCost() *stepCost {
	c := s.reading()
	return &c
}

func (c *stepCost) pause() {
	r := c.s.reading()
	c.paused = &r
}

func (c *stepCost) resume() {
	r := c.s.reading()
	c.pauseCPU += r.cpu - c.paused.cpu
	c.pauseMallocs += r.mallocs - c.paused.mallocs
	c.pauseBytes += r.bytes - c.paused.bytes
	c.paused = nil
}

// report prints, per step: CPU µs, allocations, bytes allocated and commits
// (each commit is two fdatasyncs: the pages, then the meta page).
func (c *stepCost) report(b *testing.B, steps int) {
	if steps == 0 {
		return
	}
	now := c.s.reading()
	n := float64(steps)
	b.ReportMetric(float64(now.cpu-c.cpu-c.pauseCPU)/float64(time.Microsecond)/n, "cpu_us/step")
	b.ReportMetric(float64(now.mallocs-c.mallocs-c.pauseMallocs)/n, "allocs/step")
	b.ReportMetric(float64(now.bytes-c.bytes-c.pauseBytes)/n, "B/step")
	b.ReportMetric(float64(now.commits-c.commits)/n, "commits/step")
	// What the service's memory cost for that CPU: the heap's high-water
	// mark (what the runtime obtained from the OS for it) at its GC target.
	// It is the whole process's: run one benchmark per process to read it
	// for that benchmark alone.
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapSys)/(1<<20), "heap_sys_MB")
	b.ReportMetric(float64(gcPercentInForce()), "gc_percent")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bareCommitsAround is how many bare commits a benchmark times before its
// loop, and again after it.
const bareCommitsAround = 150

// commitMeter times bbolt commits of one 300-byte value each, in a file
// opened as the ledger opens its own: the floor a durable step transition is
// compared with. A benchmark measures them before its loop, between its
// iterations and after it, so that the floor is the machine's during the
// run, and a burst of outside load at one moment weighs less.
//
// With PIPELINE_BENCH_BARE_COMMITS=off it times none (nor prints the floor
// and the ratios): bench/peers counts the process's fdatasyncs so, and the
// bare commits' would count as the stack's.
type commitMeter struct {
	db    *bbolt.DB // nil: off
	times []time.Duration
	n     int // commits so far, for the keys
}

var commitMeterBucket = []byte("bare")

func newCommitMeter(b *testing.B) *commitMeter {
	b.Helper()
	if os.Getenv("PIPELINE_BENCH_BARE_COMMITS") == "off" {
		return &commitMeter{}
	}
	db, err := boltledger.OpenDB(filepath.Join(b.TempDir(), "bare.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(commitMeterBucket); return err }); err != nil {
		b.Fatal(err)
	}
	return &commitMeter{db: db}
}

// measure times n more bare commits.
func (m *commitMeter) measure(b *testing.B, n int) {
	b.Helper()
	if m.db == nil {
		return
	}
	value := make([]byte, 300)
	for range n {
		key := fmt.Appendf(nil, "k%d", m.n%50)
		m.n++
		t0 := time.Now()
		if err := m.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(commitMeterBucket).Put(key, value) }); err != nil {
			b.Fatal(err)
		}
		m.times = append(m.times, time.Since(t0))
	}
}

// median is the bare commits' median; false when none was timed.
func (m *commitMeter) median() (time.Duration, bool) {
	if len(m.times) == 0 {
		return 0, false
	}
	s := slices.Clone(m.times)
	slices.Sort(s)
	return s[len(s)/2], true
}

// BenchmarkColdStart builds the binary, then per iteration execs `pipeline
// serve` (local backend, auth on or off, cron on, a fresh PIPELINE_DATA, the repo's
// pipelines) on a free port and reports the time from exec to the first 200
// on /healthz (ms_to_healthz, median over iterations) beside the time to
// exec and exit `pipeline --version` (ms_version: the floor of process start
// and package initialisation), and the resident set after a second of
// idling (idle_rss_MB, median).
func BenchmarkColdStart(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs the binary")
	}
	bin := filepath.Join(b.TempDir(), "pipeline")
	// Built as the Dockerfile builds it: static (no libc mapped), no symbol
	// table, embedded time zones.
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "timetzdata", "-o", bin, "../cmd/pipeline")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	pipelines, err := filepath.Abs(filepath.Join("..", "pipelines"))
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	// auth=on is the target (as `pipeline serve` runs by default); auth=off
	// shows what the local issuer's key generation costs.
	for _, authMode := range []string{"on", "off"} {
		b.Run("auth="+authMode, func(b *testing.B) {
			var toHealthz, toExit, version, rss, anon, file []float64
			for b.Loop() {
				ms, exitMS, m, err := coldStart(b, bin, pipelines, authMode, client)
				if err != nil {
					b.Fatal(err)
				}
				v, err := versionExec(bin)
				if err != nil {
					b.Fatal(err)
				}
				version = append(version, v)
				toHealthz = append(toHealthz, ms)
				toExit = append(toExit, exitMS)
				rss = append(rss, float64(m["VmRSS"])/1024)
				anon = append(anon, float64(m["RssAnon"])/1024)
				file = append(file, float64(m["RssFile"])/1024)
			}
			b.ReportMetric(median(toHealthz), "ms_to_healthz")
			// The floor under it on this machine: exec to exit of
			// `pipeline --version` (the process's start and package
			// initialisation, none of serve's work), measured alongside.
			b.ReportMetric(median(version), "ms_version")
			b.ReportMetric(median(toExit), "ms_to_exit")
			b.ReportMetric(median(rss), "idle_rss_MB")
			// The split: heap, stacks and runtime (anon) against the
			// binary's pages mapped in (file).
			b.ReportMetric(median(anon), "rss_anon_MB")
			b.ReportMetric(median(file), "rss_file_MB")
		})
	}
}

// coldStart runs one `pipeline serve` and returns the time from exec to the
// first 200 on /healthz, the time from SIGTERM to its exit with nothing in
// flight, and its memory after a second of idling.
func coldStart(b *testing.B, bin, pipelines, authMode string, client *http.Client) (ms, exitMS float64, memKB map[string]int, err error) {
	port, err := freeTCPPort()
	if err != nil {
		return 0, 0, nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "PIPELINE_DATA="+b.TempDir(),
		"PIPELINE_FILE="+pipelines, "PIPELINE_BACKEND=local", "PIPELINE_AUTH="+authMode)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, nil, err
	}
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(t0) > 10*time.Second {
			return 0, 0, nil, fmt.Errorf("no 200 from %s within 10 s: %v", url, err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	ms = float64(time.Since(t0)) / float64(time.Millisecond)
	time.Sleep(time.Second) // idle, as a service between runs
	memKB, err = procMemory(cmd.Process.Pid)
	if err != nil {
		return 0, 0, nil, err
	}
	t1 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, 0, nil, err
	}
	exited = true
	if err := cmd.Wait(); err != nil {
		return 0, 0, nil, fmt.Errorf("serve after SIGTERM: %w", err)
	}
	exitMS = float64(time.Since(t1)) / float64(time.Millisecond)
	return ms, exitMS, memKB, nil
}

// versionExec times one `pipeline --version`, from exec to exit (ms).
func versionExec(bin string) (float64, error) {
	t0 := time.Now()
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s --version: %v\n%s", bin, err, out)
	}
	return float64(time.Since(t0)) / float64(time.Millisecond), nil
}

func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// procMemory reads a process's resident set size and its anonymous and
// file-backed parts (kB: VmRSS, RssAnon, RssFile) from /proc.
func procMemory(pid int) (map[string]int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "RssAnon" && k != "RssFile") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		m[k] = n
	}
	if _, ok := m["VmRSS"]; !ok {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
