package emulator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Emulator is a running Cloud Tasks emulator. Close stops it.
type Emulator struct {
	cfg       Config
	grpcLis   net.Listener
	grpcSrv   *grpc.Server
	issuerLis net.Listener
	issuerSrv *http.Server
	issuer    *issuer
	client    *http.Client

	ctx       context.Context // cancelled by Close; parent of every dispatch
	cancel    context.CancelFunc
	stopAfter func() bool // detaches Close from Start's context
	wg        sync.WaitGroup
	wake      chan struct{} // nudges the scheduler; buffered 1
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	queues    map[string]*cloudtaskspb.Queue
	tasks     map[string]*task     // stored tasks by resource name
	used      map[string]time.Time // names of ended tasks, with the end time
	usedSwept int                  // len(used) after the last sweep
	due       dueHeap
	seq       uint64
	inflight  int
	stats     Stats
	faults    []Fault
	changed   chan struct{} // closed and replaced when a task ends
}

// Stats are the emulator's counters since Start.
type Stats struct {
	Created       int64 // tasks accepted by CreateTask
	AlreadyExists int64 // CreateTask calls refused because the name was taken
	Faulted       int64 // CreateTask calls failed by InjectCreateFaults
	Deleted       int64 // tasks removed by DeleteTask
	Dispatches    int64 // delivery attempts that ended (answered or not)
	Succeeded     int64 // tasks that got a 2xx and were removed
	Exhausted     int64 // tasks dropped after MaxAttempts failed attempts
	Pending       int   // tasks stored now, waiting or in flight
	InFlight      int   // attempts in flight now
	// ByStatus counts ended attempts by HTTP status; 0 is no response
	// (connection error or dispatch deadline).
	ByStatus map[int]int64
}

// Fault is a failure InjectCreateFaults makes a CreateTask call return.
type Fault struct {
	Code codes.Code
	// AfterCommit stores the task before failing, like a response lost on
	// the way back: a retry of the same name then meets AlreadyExists.
	AfterCommit bool
}

// Start listens on cfg.Addr (gRPC) and cfg.IssuerAddr (OIDC issuer) and
// serves until Close or until ctx is done.
func Start(ctx context.Context, cfg Config) (*Emulator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen on %s: %w", cfg.Addr, err)
	}
	issuerLis, err := lc.Listen(ctx, "tcp", cfg.IssuerAddr)
	if err != nil {
		_ = grpcLis.Close()
		return nil, fmt.Errorf("emulator: issuer: listen on %s: %w", cfg.IssuerAddr, err)
	}
	issuerURL := strings.TrimSuffix(cfg.IssuerURL, "/")
	if issuerURL == "" {
		issuerURL = "http://" + dialable(issuerLis.Addr())
	}
	iss, err := newIssuer(issuerURL, cfg.SigningKey)
	if err != nil {
		_ = grpcLis.Close()
		_ = issuerLis.Close()
		return nil, err
	}
	client := cfg.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.MaxConcurrent
		client = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	e := &Emulator{
		cfg:       cfg,
		grpcLis:   grpcLis,
		grpcSrv:   grpc.NewServer(),
		issuerLis: issuerLis,
		issuerSrv: &http.Server{Handler: iss, ReadHeaderTimeout: 10 * time.Second},
		issuer:    iss,
		client:    client,
		wake:      make(chan struct{}, 1),
		queues:    map[string]*cloudtaskspb.Queue{},
		tasks:     map[string]*task{},
		used:      map[string]time.Time{},
		stats:     Stats{ByStatus: map[int]int64{}},
		changed:   make(chan struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	cloudtaskspb.RegisterCloudTasksServer(e.grpcSrv, &server{e: e})
	e.wg.Go(func() { _ = e.grpcSrv.Serve(grpcLis) })
	e.wg.Go(func() {
		if err := e.issuerSrv.Serve(issuerLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.cfg.Logger.Warn("emulator: issuer stopped", "err", err)
		}
	})
	e.wg.Go(e.schedule)
	e.stopAfter = context.AfterFunc(ctx, func() { _ = e.Close() })
	e.cfg.Logger.Info("cloud tasks emulator listening", "grpc", e.Addr(), "issuer", e.IssuerURL())
	return e, nil
}

// dialable is addr with an unspecified IP replaced by loopback.
func dialable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// Addr is the gRPC address to dial, host:port (CLOUD_TASKS_EMULATOR_HOST).
func (e *Emulator) Addr() string { return dialable(e.grpcLis.Addr()) }

// Token mints an ID token from the emulator's issuer, as Google would for a
// service account: for callers other than Cloud Tasks (a Cloud Scheduler job
// with an OIDC token, an operator's curl) against a service that trusts
// OIDC_ISSUER = IssuerURL.
func (e *Emulator) Token(audience, email string) (string, error) {
	return e.issuer.token(audience, email, time.Now())
}

// IssuerURL is the OIDC issuer of the tokens on dispatched tasks (OIDC_ISSUER).
func (e *Emulator) IssuerURL() string { return e.issuer.url }

// Close stops serving, cancels attempts in flight and waits for them. Tasks
// are lost: the emulator keeps no state on disk.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		e.stopAfter()
		e.cancel()
		e.grpcSrv.Stop()
		if err := e.issuerSrv.Close(); err != nil {
			e.closeErr = fmt.Errorf("emulator: close issuer: %w", err)
		}
		e.wg.Wait()
	})
	return e.closeErr
}

// Stats returns a copy of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statsLocked()
}

// statsLocked is Stats with e.mu held.
func (e *Emulator) statsLocked() Stats {
	s := e.stats
	s.ByStatus = maps.Clone(e.stats.ByStatus)
	s.Pending = len(e.tasks)
	s.InFlight = e.inflight
	return s
}

// Tasks returns copies of the stored tasks (full view), sorted by name.
func (e *Emulator) Tasks() []*cloudtaskspb.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*cloudtaskspb.Task, 0, len(e.tasks))
	for _, t := range e.tasks {
		out = append(out, view(t.pb, cloudtaskspb.Task_FULL))
	}
	slices.SortFunc(out, func(a, b *cloudtaskspb.Task) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// WaitIdle returns when no task is stored and no attempt is in flight, or
// with ctx's error.
func (e *Emulator) WaitIdle(ctx context.Context) error {
	return e.WaitFor(ctx, func(s Stats) bool { return s.Pending == 0 && s.InFlight == 0 })
}

// WaitFor returns when cond holds for the current Stats, or with ctx's
// error. cond is checked again after every task creation, attempt and
// deletion; it must not call the Emulator.
func (e *Emulator) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	for {
		e.mu.Lock()
		ok, changed := cond(e.statsLocked()), e.changed
		e.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("emulator: wait: %w", ctx.Err())
		case <-changed:
		case <-e.ctx.Done():
			return errors.New("emulator: wait: emulator closed")
		}
	}
}

// InjectCreateFaults makes the next len(faults) CreateTask calls fail, in
// order, with the given codes: for testing clients' retries.
func (e *Emulator) InjectCreateFaults(faults ...Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, faults...)
}

// view is a copy of pb in view v: BASIC omits the HTTP body, as Cloud Tasks does.
func view(pb *cloudtaskspb.Task, v cloudtaskspb.Task_View) *cloudtaskspb.Task {
	out := proto.Clone(pb).(*cloudtaskspb.Task)
	if v != cloudtaskspb.Task_FULL {
		v = cloudtaskspb.Task_BASIC
		if hr := out.GetHttpRequest(); hr != nil {
			hr.Body = nil
		}
	}
	out.View = v
	return out
}

// signalLocked wakes the scheduler and WaitFor callers. e.mu must be held.
func (e *Emulator) signalLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
	e.nudge()
}

// nudge wakes the scheduler.
func (e *Emulator) nudge() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// taken reports whether name belongs to a stored task or to one that ended
// within the reuse window. e.mu must be held.
func (e *Emulator) taken(name string, now time.Time) bool {
	if _, ok := e.tasks[name]; ok {
		return true
	}
	at, ok := e.used[name]
	if !ok {
		return false
	}
	if e.cfg.ReuseWindow == 0 || now.Sub(at) < e.cfg.ReuseWindow {
		return true
	}
	delete(e.used, name)
	return false
}

// retire removes an ended task and keeps its name taken. e.mu must be held.
func (e *Emulator) retire(t *task, now time.Time) {
	delete(e.tasks, t.pb.Name)
	if e.cfg.ReuseWindow < 0 {
		return
	}
	e.used[t.pb.Name] = now
	if e.cfg.ReuseWindow > 0 && len(e.used) >= 2*e.usedSwept+1024 {
		for name, at := range e.used {
			if now.Sub(at) >= e.cfg.ReuseWindow {
				delete(e.used, name)
			}
		}
		e.usedSwept = len(e.used)
	}
}
