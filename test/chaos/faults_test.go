package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/pipelinehq/pipeline/pipeline"
)

// errInjected is every fault the decorators inject: a transient failure the
// callers must survive (an Unavailable, a timeout, a dropped connection).
var errInjected = errors.New("chaos: injected fault")

// dice rolls faults with a fixed share, safely from many goroutines; off
// stops all faults (the recovery phase).
type dice struct {
	mu    sync.Mutex
	rng   *rand.Rand
	share float64
	// first are rolls returned before any random one (guarded by mu).
	first []int
	off   atomic.Bool
}

func newDice(share float64, seed uint64) *dice {
	return &dice{rng: rand.New(rand.NewPCG(seed, 12)), share: share}
}

// roll returns 0 (no fault), 1 (fault of the first kind) or 2 (second kind),
// each fault kind with half the share (after the rolls of first, if any).
func (d *dice) roll() int {
	if d.off.Load() {
		return 0
	}
	d.mu.Lock()
	if len(d.first) > 0 {
		k := d.first[0]
		d.first = d.first[1:]
		d.mu.Unlock()
		return k
	}
	r := d.rng.Float64()
	d.mu.Unlock()
	switch {
	case r < d.share/2:
		return 1
	case r < d.share:
		return 2
	}
	return 0
}

// faultyQueue fails a share of enqueues before they reach the queue and a
// share after (the task exists but the reply is lost).
type faultyQueue struct {
	inner pipeline.Queue
	d     *dice
	// onlyAfter makes every fault a lost reply (the task exists).
	onlyAfter     bool
	calls         atomic.Int64
	before, after atomic.Int64
}

var _ pipeline.Queue = (*faultyQueue)(nil)

func (q *faultyQueue) Enqueue(ctx context.Context, t pipeline.Task) error {
	q.calls.Add(1)
	roll := q.d.roll()
	if roll != 0 && q.onlyAfter {
		roll = 2
	}
	switch roll {
	case 1:
		q.before.Add(1)
		return errInjected
	case 2:
		if err := q.inner.Enqueue(ctx, t); err != nil {
			return err
		}
		q.after.Add(1)
		return errInjected
	}
	return q.inner.Enqueue(ctx, t)
}

// faultyLedger loses the reply of a share of writes (the write landed, the
// caller gets an error) and fails a share of reads before they reach the
// store.
type faultyLedger struct {
	pipeline.Ledger
	d                       *dice
	writes, reads           atomic.Int64
	lostReplies, readFaults atomic.Int64
	// loseStepReply and failRead, when set, fault the next step write
	// and the next read whatever the dice say: a scenario's few calls
	// then hold at least one fault of each kind.
	loseStepReply, failRead atomic.Bool
}

var _ pipeline.Ledger = (*faultyLedger)(nil)

func (l *faultyLedger) write() bool { return l.writeOr(false) }

// writeOr is write, faulting the reply anyway when forced.
func (l *faultyLedger) writeOr(forced bool) bool {
	l.writes.Add(1)
	if l.d.roll() != 0 || forced {
		l.lostReplies.Add(1)
		return true
	}
	return false
}

func (l *faultyLedger) read() error {
	l.reads.Add(1)
	if l.d.roll() != 0 || l.failRead.CompareAndSwap(true, false) {
		l.readFaults.Add(1)
		return errInjected
	}
	return nil
}

func (l *faultyLedger) CreateRun(ctx context.Context, r pipeline.Run, steps []pipeline.StepRun) (pipeline.Run, bool, error) {
	stored, created, err := l.Ledger.CreateRun(ctx, r, steps)
	if err == nil && l.write() {
		return pipeline.Run{}, false, errInjected
	}
	return stored, created, err
}

func (l *faultyLedger) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	stored, err := l.Ledger.UpdateStep(ctx, s)
	if err == nil && l.writeOr(l.loseStepReply.CompareAndSwap(true, false)) {
		return pipeline.StepRun{}, errInjected
	}
	return stored, err
}

func (l *faultyLedger) UpdateRun(ctx context.Context, r pipeline.Run) (pipeline.Run, error) {
	stored, err := l.Ledger.UpdateRun(ctx, r)
	if err == nil && l.write() {
		return pipeline.Run{}, errInjected
	}
	return stored, err
}

func (l *faultyLedger) GetRun(ctx context.Context, id string) (pipeline.Run, error) {
	if err := l.read(); err != nil {
		return pipeline.Run{}, err
	}
	return l.Ledger.GetRun(ctx, id)
}

func (l *faultyLedger) GetSteps(ctx context.Context, id string, steps ...string) ([]pipeline.StepRun, error) {
	if err := l.read(); err != nil {
		return nil, err
	}
	return l.Ledger.GetSteps(ctx, id, steps...)
}

// faultyNotifier fails a share of notifications and blocks another share
// until the context ends (the orchestrator must neither fail nor stall a step
// for it).
type faultyNotifier struct {
	inner           pipeline.Notifier
	d               *dice
	calls           atomic.Int64
	failed, blocked atomic.Int64
}

var _ pipeline.Notifier = (*faultyNotifier)(nil)

func (n *faultyNotifier) Notify(ctx context.Context, e pipeline.Event) error {
	n.calls.Add(1)
	switch n.d.roll() {
	case 1:
		n.failed.Add(1)
		return errInjected
	case 2:
		n.blocked.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}
	return n.inner.Notify(ctx, e)
}
