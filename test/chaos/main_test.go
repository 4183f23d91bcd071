package chaos

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/internal/fsemu"
)

func TestMain(m *testing.M) { fsemu.Main(m) }

// size is how hard the scenarios push: CHAOS_SIZE=small (the default, what
// CI runs) or full (the figures of docs/reliability.md).
type size struct {
	name string
	// dupRuns runs each get dupCopies concurrent copies of every step task
	// during the body and after success, and a lease race.
	dupRuns, dupCopies int
	// crashRuns runs over crashKills kill -9s of serve.
	crashRuns, crashKills int
	// shutdowns SIGTERMs with a long step in flight.
	shutdowns int
	// faultRuns runs with faultShare of queue (or ledger) calls faulted.
	faultRuns  int
	faultShare float64
	// outage is how long Discord stays down; outageRuns end during it.
	outage     time.Duration
	outageRuns int
	// deployRuns runs in flight across a definition change.
	deployRuns int
	// fuzzRequests malformed requests; forgedTokens bad tokens.
	fuzzRequests, forgedTokens int
	// rerunRuns runs are re-run in part by an operator, with rerunCopies
	// copies of every generation's task while their cascades run.
	rerunRuns, rerunCopies int
	// sharedRuns keys run on each of two services sharing a queue;
	// dispatchRuns runs with replies to the queue's deliveries dropped.
	sharedRuns, dispatchRuns int
	// backfillDays dates backfilled (max_parallel 2); opRuns runs each
	// for --only, a failed run resumed, a cancelled run resumed; opCopies
	// copies of every step task while its body runs.
	backfillDays, opRuns, opCopies int
	// crashPointRuns runs per crash point, over crashPointKills kills
	// (one kill per round of runs).
	crashPointRuns, crashPointKills int
	// skewRuns runs go through the re-run phases on two instances with
	// skewed clocks, with skewCopies copies of every generation's task;
	// owedRuns runs created 3 days earlier are re-opened, their final
	// notification owed.
	skewRuns, skewCopies, owedRuns int
}

var sizes = map[string]size{
	"small": {name: "small", dupRuns: 1, dupCopies: 10, crashRuns: 4, crashKills: 2, shutdowns: 1,
		faultRuns: 6, faultShare: 0.3, outage: 2 * time.Second, outageRuns: 2, deployRuns: 2,
		fuzzRequests: 200, forgedTokens: 32, rerunRuns: 2, rerunCopies: 3,
		sharedRuns: 3, dispatchRuns: 3, backfillDays: 4, opRuns: 1, opCopies: 2,
		crashPointRuns: 2, crashPointKills: 1, skewRuns: 2, skewCopies: 2, owedRuns: 3},
	"full": {name: "full", dupRuns: 5, dupCopies: 100, crashRuns: 100, crashKills: 50, shutdowns: 5,
		faultRuns: 200, faultShare: 0.3, outage: 2 * time.Minute, outageRuns: 10, deployRuns: 10,
		fuzzRequests: 2000, forgedTokens: 400, rerunRuns: 20, rerunCopies: 10,
		sharedRuns: 50, dispatchRuns: 50, backfillDays: 30, opRuns: 5, opCopies: 10,
		crashPointRuns: 20, crashPointKills: 4, skewRuns: 20, skewCopies: 10, owedRuns: 20},
}

func chaosSize(t *testing.T) size {
	t.Helper()
	name := os.Getenv("CHAOS_SIZE")
	if name == "" {
		name = "small"
	}
	s, ok := sizes[name]
	if !ok {
		t.Fatalf("CHAOS_SIZE=%q: want small or full", name)
	}
	return s
}

// figures is one scenario's result line.
type figures struct {
	scenario, backend                      string
	tried, completed, lost, doubled, stuck int
	recovery                               time.Duration
	extra                                  []string // scenario-specific "name value" pairs
}

func (f *figures) add(format string, args ...any) {
	f.extra = append(f.extra, fmt.Sprintf(format, args...))
}

func (f figures) String() string {
	s := fmt.Sprintf("chaos %s %s: tried %d / completed %d / lost %d / doubled %d / stuck %d / recovery %.1fs",
		f.scenario, f.backend, f.tried, f.completed, f.lost, f.doubled, f.stuck, f.recovery.Seconds())
	if len(f.extra) > 0 {
		s += " / " + strings.Join(f.extra, " / ")
	}
	return s
}

var reportMu sync.Mutex

// report prints the figure line (stdout, and CHAOS_REPORT if set) and fails
// the test on any lost, doubled or stuck run.
func report(t *testing.T, f figures) {
	t.Helper()
	line := f.String()
	reportMu.Lock()
	fmt.Println(line)
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		if fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(fh, line)
			fh.Close()
		}
	}
	reportMu.Unlock()
	if f.lost > 0 || f.doubled > 0 || f.stuck > 0 {
		t.Errorf("%s: lost %d, doubled %d, stuck %d; want 0", f.scenario, f.lost, f.doubled, f.stuck)
	}
}
