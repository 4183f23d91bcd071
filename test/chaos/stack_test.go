package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/internal/testbin"
	"github.com/pipelinehq/pipeline/queue/cloudtasks/emulator"
	"github.com/pipelinehq/pipeline/steps"
)

// Identities of the gcp backend's callers (tokens from the Cloud Tasks
// emulator's issuer).
const (
	tasksSA     = "tasks@demo-chaos.iam.gserviceaccount.com"
	schedulerSA = "scheduler@demo-chaos.iam.gserviceaccount.com"
	operatorSA  = "operator@example.com"
)

// backendsFor lists the backends a scenario runs on: both at full size; at
// the small size CI runs, the local backend only, unless the scenario is about
// the gcp backend (gcpAlways) or CHAOS_BACKENDS lists them (e.g.
// CHAOS_BACKENDS=local,gcp).
func backendsFor(sz size, gcpAlways bool) []string {
	if v := os.Getenv("CHAOS_BACKENDS"); v != "" {
		return strings.Split(v, ",")
	}
	if sz.name == "full" || gcpAlways {
		return []string{"local", "gcp"}
	}
	return []string{"local"}
}

// stackOptions shape an in-process service.
type stackOptions struct {
	hook       Hook
	wrap       app.Wrappers
	discordURL string
	// leaseGrace defaults to 1 s.
	leaseGrace time.Duration
	// firestoreHost overrides the Firestore emulator address (a proxy).
	firestoreHost string
	// tasksHost overrides the Cloud Tasks emulator address (a proxy).
	tasksHost string
	// auth forces auth on for the local backend (gcp always has it on).
	auth bool
	// binary runs the service as a process (the chaos-pipeline binary), so
	// that it can be killed; hook and wrap do not apply then.
	binary bool
	// emu shares another stack's Cloud Tasks emulator (gcp): one queue
	// for two services.
	emu *emulator.Emulator
	// serviceURL is where the queue delivers tasks (gcp; default the
	// service itself), e.g. a proxy in front of it; tokens keep the
	// service's own URL as their audience.
	serviceURL string
	// clock is the service's clock (app.WithClock; default the machine's).
	clock func() time.Time
	// peer is another instance of the same service (gcp): this one shares
	// its ledger (Firestore collection), its Cloud Tasks emulator, its token
	// audience and its data directory (one body log for both).
	peer *stack
}

// stack is the service wired by package app, in this process, on the local
// backend or on the gcp backend against the Firestore emulator and the Cloud
// Tasks emulator. restart stops it gracefully and starts it again on the same
// store (a deploy).
type stack struct {
	t          *testing.T
	backend    string
	opts       stackOptions
	dir, data  string
	file       string
	port       int
	base       string
	collection string
	// audience is the token audience the service expects (gcp): its own
	// URL, or its peer's.
	audience string
	// spreadTo are the base URLs do sends to in turn (see spread); empty:
	// the service's own.
	spreadTo []string
	next     atomic.Uint64
	emu      *emulator.Emulator
	key      *rsa.PrivateKey // the emulator issuer's signing key
	logs     *syncBuffer
	stop     context.CancelFunc
	done     chan error
	client   *http.Client
	// proc is the running process (binary mode); interrupted holds the pids
	// killed or terminated, whose bodies in flight may run again.
	proc        *exec.Cmd
	interrupted map[int]bool
}

func newStack(t *testing.T, backend, yaml string, opts stackOptions) *stack {
	t.Helper()
	return newStackWith(t, backend, yaml, opts, nil)
}

// newStackWith is newStack with a hook that runs once the emulators exist and
// before the service starts (to put proxies in front of them).
func newStackWith(t *testing.T, backend, yaml string, opts stackOptions, ready func(*stack)) *stack {
	t.Helper()
	if opts.leaseGrace == 0 {
		opts.leaseGrace = time.Second
	}
	dir := t.TempDir()
	s := &stack{t: t, backend: backend, opts: opts, dir: dir, data: filepath.Join(dir, "data"),
		file: filepath.Join(dir, "chaos.yaml"), port: freePort(t), logs: &syncBuffer{},
		client: &http.Client{Timeout: 30 * time.Second}, interrupted: map[int]bool{}}
	s.base = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.audience = s.base
	if p := opts.peer; p != nil {
		if backend != "gcp" || p.backend != "gcp" {
			t.Fatalf("instances sharing a ledger need the gcp backend")
		}
		s.data, s.audience = p.data, p.audience
	}
	if backend == "gcp" {
		host := fsemu.Host(t)
		if opts.firestoreHost != "" {
			host = opts.firestoreHost
		}
		t.Setenv("FIRESTORE_EMULATOR_HOST", host)
		s.collection = fsemu.Collection(t)
		if opts.peer != nil {
			s.collection, opts.emu = opts.peer.collection, opts.peer.emu
		}
		if opts.emu != nil {
			s.emu = opts.emu
		} else {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			s.key = key
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			emu, err := emulator.Start(ctx, emulator.Config{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, SigningKey: key})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { emu.Close() })
			s.emu = emu
		}
	}
	s.writeDefinition(yaml)
	if ready != nil {
		ready(s)
	}
	s.start()
	stopSweeper := s.sweep(reconcileEvery)
	t.Cleanup(func() {
		stopSweeper()
		s.shutdown()
		if t.Failed() {
			t.Logf("--- service logs (%s):\n%s", backend, tail(s.logs.String(), 8000))
		}
	})
	return s
}

// reconcileEvery is how often the suite calls POST /pipeline/reconcile, as
// the deployment's Scheduler job does every 5 minutes (compressed here so that
// what the sweeper heals is healed within a test).
const reconcileEvery = 3 * time.Second

// sweep calls the reconcile route every interval until stopped; failures
// (the service is down, a fault) are ignored, as Scheduler's next tick would.
func (s *stack) sweep(every time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
				_, _, _ = s.doAt(s.base, "POST", "/pipeline/reconcile", schedulerSA, nil, nil)
			}
		}
	}()
	return func() { close(quit); <-done }
}

func (s *stack) writeDefinition(yaml string) {
	s.t.Helper()
	if err := os.WriteFile(s.file, []byte(yaml), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// bodyLog is where the chaos kind records bodies.
func (s *stack) bodyLog() string { return filepath.Join(s.data, BodyLogName) }

func (s *stack) args() []string {
	auth := "off"
	if s.backend == "gcp" || s.opts.auth {
		auth = "on"
	}
	args := []string{"--backend", s.backend, "--data", s.data, "--file", s.file, "--auth", auth,
		"--lease-grace", s.opts.leaseGrace.String(), "--log-level", "warn"}
	if s.opts.discordURL != "" {
		args = append(args, "--discord-webhook-url", s.opts.discordURL)
	}
	if s.backend == "gcp" {
		tasks := s.emu.Addr()
		if s.opts.tasksHost != "" {
			tasks = s.opts.tasksHost
		}
		serviceURL := s.base
		if s.opts.serviceURL != "" {
			serviceURL = s.opts.serviceURL
		}
		args = append(args, "--project", "demo-chaos", "--service-url", serviceURL, "--audience", s.audience, "--tasks-location", "local",
			"--tasks-queue", "chaos", "--tasks-service-account", tasksSA, "--tasks-emulator", tasks,
			"--issuer", s.emu.IssuerURL(), "--allowed-invokers", tasksSA+","+schedulerSA,
			"--allowed-operators", operatorSA, "--ledger-collection", s.collection)
	}
	return append(args, "serve", "--port", fmt.Sprint(s.port), "--host", "127.0.0.1", "--no-cron")
}

func (s *stack) start() {
	s.t.Helper()
	if s.opts.binary {
		s.startProcess()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan error, 1)
	opts := []app.Option{
		app.WithOutput(s.logs, s.logs),
		app.WithConfiguredSteps(func(reg *steps.Registry, cfg *app.Config) {
			Register(reg, filepath.Join(cfg.Data, BodyLogName), s.opts.hook)
		}),
		app.WithWrappers(s.opts.wrap),
	}
	if s.opts.clock != nil {
		opts = append(opts, app.WithClock(s.opts.clock))
	}
	go func() { s.done <- app.Main(ctx, s.args(), opts...) }()
	s.waitHealthy()
}

func (s *stack) waitHealthy() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			s.t.Fatalf("service exited at start: %v\n%s", err, s.logs.String())
		default:
		}
		resp, err := s.client.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("service not healthy:\n%s", s.logs.String())
}

// shutdown stops the service (in-process: gracefully, as SIGTERM does) and
// waits for it.
func (s *stack) shutdown() {
	if s.opts.binary {
		if s.proc != nil { // the figures are taken: no need to wait for a graceful exit
			s.signal(syscall.SIGKILL)
		}
		return
	}
	if s.stop == nil {
		return
	}
	s.stop()
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.t.Errorf("service did not stop within 60 s")
	}
	s.stop = nil
}

// restart is a deploy: stop gracefully, write yaml (if any), start again on
// the same store.
func (s *stack) restart(yaml string) {
	s.t.Helper()
	s.shutdown()
	if yaml != "" {
		s.writeDefinition(yaml)
	}
	s.start()
}

// token is a valid ID token for email (gcp backend; "" on local).
func (s *stack) token(email string) string {
	if s.backend != "gcp" {
		return ""
	}
	tok, err := s.emu.Token(s.audience, email)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// spread makes do send its requests to this service and the peers in turn
// (instances of one service: same ledger, same audience).
func (s *stack) spread(peers ...*stack) {
	s.spreadTo = []string{s.base}
	for _, p := range peers {
		s.spreadTo = append(s.spreadTo, p.base)
	}
}

// do sends one request as email (a token is added on gcp), to the service or,
// after spread, to the next of its instances; err is a transport error.
func (s *stack) do(method, path, email string, body []byte, hdr map[string]string) (int, []byte, error) {
	base := s.base
	if n := uint64(len(s.spreadTo)); n > 0 {
		base = s.spreadTo[s.next.Add(1)%n]
	}
	return s.doAt(base, method, path, email, body, hdr)
}

// doAt is do, sent to base.
func (s *stack) doAt(base, method, path, email string, body []byte, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := s.token(email); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// startRun starts run chaos@key as Scheduler would, retrying (bounded) on 5xx
// and transport errors as Scheduler does; it reports whether the service
// acknowledged the run.
func (s *stack) startRun(key string) bool {
	return startRun(s.t, func() (int, []byte, error) {
		return s.do("POST", "/pipeline/start", schedulerSA, []byte(fmt.Sprintf(`{"pipeline":"chaos","key":%q,"date":"2026-11-01"}`, key)), nil)
	})
}

func startRun(t *testing.T, call func() (int, []byte, error)) bool {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		code, body, err := call()
		if err == nil && (code == 200 || code == 201) {
			return true
		}
		if err == nil && code/100 == 4 {
			t.Errorf("start refused: %d %s", code, body)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// getRun reads a run over the API (the ledger's view).
func (s *stack) getRun(id string) (runView, bool) {
	code, body, err := s.do("GET", "/pipeline/runs/"+id, schedulerSA, nil, nil)
	return decodeRun(code, body, err)
}

func decodeRun(code int, body []byte, err error) (runView, bool) {
	if err != nil || code != 200 {
		return runView{}, false
	}
	var r runView
	if json.Unmarshal(body, &r) != nil {
		return runView{}, false
	}
	return r, true
}

// runView is a run as GET /pipeline/runs/{run} shows it.
type runView struct {
	ID         string     `json:"run_id"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	Epoch      int64      `json:"epoch"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt time.Time  `json:"finished_at"`
	Steps      []stepView `json:"steps"`
}

// stepView is a step of a runView.
type stepView struct {
	Step       string    `json:"step"`
	Status     string    `json:"status"`
	Attempts   int       `json:"attempts"`
	Generation int       `json:"generation"`
	FinishedAt time.Time `json:"finished_at"`
	// Inputs are the generations of its predecessors it consumed.
	Inputs map[string]int `json:"inputs"`
	// History is the step's attempts (only their errors are read).
	History []struct {
		Error string `json:"error"`
	} `json:"history"`
}

// step is the named step's view (zero if the run has none).
func (r runView) step(name string) stepView {
	for _, s := range r.Steps {
		if s.Step == name {
			return s
		}
	}
	return stepView{}
}

// chainAfter is chainYAML's graph: each step's predecessors.
var chainAfter = map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}

// consumedLatest says whether every succeeded step of a chainYAML run
// consumed its predecessors' latest generations (no step is stale).
func (r runView) consumedLatest() bool {
	for _, s := range r.Steps {
		if s.Status != "succeeded" {
			continue
		}
		for _, p := range chainAfter[s.Step] {
			if s.Inputs[p] != r.step(p).Generation {
				return false
			}
		}
	}
	return true
}

func (r runView) terminal() bool {
	return r.Status == "succeeded" || r.Status == "failed" || r.Status == "cancelled"
}

// waitRuns polls until every run is terminal or the deadline passes, and
// returns the last view of each (missing: never found).
func waitRuns(ids []string, within time.Duration, get func(string) (runView, bool)) map[string]runView {
	return waitFor(ids, within, get, runView.terminal)
}

// waitFor polls until every run satisfies ok or the deadline passes, and
// returns the last view of each (missing: never found).
func waitFor(ids []string, within time.Duration, get func(string) (runView, bool), ok func(runView) bool) map[string]runView {
	out := map[string]runView{}
	deadline := time.Now().Add(within)
	for {
		all := true
		for _, id := range ids {
			if v, done := out[id]; done && ok(v) {
				continue
			}
			v, got := get(id)
			if got {
				out[id] = v
			}
			if !got || !ok(v) {
				all = false
			}
		}
		if all || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// chainYAML is the standard chain: a fans out to b and c, d joins them.
func chainYAML(sleep string) string {
	return fmt.Sprintf(`name: chaos
time_zone: UTC
steps:
  - {name: a, kind: chaos, after: [], timeout: 5s, max_attempts: 10, chaos: {sleep: %[1]s}}
  - {name: b, kind: chaos, after: [a], timeout: 5s, max_attempts: 10, chaos: {sleep: %[1]s}}
  - {name: c, kind: chaos, after: [a], timeout: 5s, max_attempts: 10, chaos: {sleep: %[1]s}}
  - {name: d, kind: chaos, after: [b, c], timeout: 5s, max_attempts: 10, chaos: {sleep: %[1]s}}
`, sleep)
}

// binaryPath is the chaos-pipeline command, built once per test binary.
func binaryPath(t *testing.T) string {
	t.Helper()
	return testbin.Build(t, "./cmd/chaos-pipeline")
}

func (s *stack) startProcess() {
	s.t.Helper()
	cmd := exec.Command(binaryPath(s.t), s.args()...)
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.proc = cmd
	s.done = make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	s.waitHealthy()
}

// signal sends sig to the process, waits for it to exit and returns how long
// that took; its pid counts as interrupted.
func (s *stack) signal(sig syscall.Signal) time.Duration {
	s.t.Helper()
	at := time.Now()
	s.interrupted[s.proc.Process.Pid] = true
	if err := s.proc.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		_ = s.proc.Process.Kill()
		<-s.done
		s.t.Errorf("service did not exit within 60 s of %v", sig)
	}
	s.proc = nil
	return time.Since(at)
}
