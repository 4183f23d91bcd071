package firestoreledger_test

import (
	"context"
	"errors"
	"path"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

// loseReply lets Commit calls through but, while armed, loses the reply of
// the first one: the caller gets Unavailable although the write landed.
type loseReply struct {
	armed   atomic.Bool
	commits atomic.Int64
}

func (l *loseReply) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if path.Base(method) == "Commit" {
		l.commits.Add(1)
		if err == nil && l.armed.CompareAndSwap(true, false) {
			return status.Error(codes.Unavailable, "connection reset (injected after the commit landed)")
		}
	}
	return err
}

// newFaultyLedger is a ledger on the emulator over a connection that loses
// the reply of a commit when armed.
func newFaultyLedger(t *testing.T) (*firestoreledger.Ledger, *loseReply) {
	t.Helper()
	host := fsemu.Host(t)
	faults := &loseReply{}
	conn, err := fsemu.Dial(host, nil, faults.intercept)
	if err != nil {
		t.Fatal(err)
	}
	client, err := firestore.NewClient(context.Background(), fsemu.Project, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		_ = conn.Close()
	})
	return firestoreledger.New(client, fsemu.Collection(t)), faults
}

// A compare-and-swap write whose reply was lost (the commit landed, the
// caller saw Unavailable, the client's retry failed its precondition) is
// recognised as the caller's own write: a success, not a conflict.
func TestLostReplyIsRecognisedAsOwnWrite(t *testing.T) {
	ctx := context.Background()
	l, faults := newFaultyLedger(t)
	r, steps := newRun("2026-11-23", t0, "claim")
	faults.armed.Store(true)
	stored, created, err := l.CreateRun(ctx, r, steps)
	if err != nil || !created {
		t.Fatalf("CreateRun with a lost reply = created %v, %v; want created", created, err)
	}

	cur := getStep(t, l, r.ID, "claim")
	claim := cur
	claim.Status, claim.Attempts, claim.LeaseUntil = pipeline.StepRunning, 1, t0.Add(time.Minute)
	faults.armed.Store(true)
	before := faults.commits.Load()
	got, err := l.UpdateStep(ctx, claim)
	if err != nil {
		t.Fatalf("UpdateStep with a lost reply: %v (a conflict would mean: claimed by nobody)", err)
	}
	if faults.armed.Load() || faults.commits.Load() == before {
		t.Fatal("the fault was not injected")
	}
	back := getStep(t, l, r.ID, "claim")
	if got.Version != back.Version || back.Status != pipeline.StepRunning || back.Attempts != 1 {
		t.Fatalf("stored %+v, returned version %d", back, got.Version)
	}
	// A concurrent writer's stale write is still a conflict.
	if _, err := l.UpdateStep(ctx, cur); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("stale write = %v, want a conflict", err)
	}

	run := stored
	run.Status = pipeline.RunRunning
	faults.armed.Store(true)
	gotRun, err := l.UpdateRun(ctx, run)
	if err != nil {
		t.Fatalf("UpdateRun with a lost reply: %v", err)
	}
	if _, err := l.UpdateRun(ctx, stored); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("stale run write = %v, want a conflict", err)
	}
	if back, err := l.GetRun(ctx, r.ID); err != nil || back.Version != gotRun.Version || back.Status != pipeline.RunRunning {
		t.Fatalf("stored run %+v, %v; returned version %d", back, err, gotRun.Version)
	}
}
