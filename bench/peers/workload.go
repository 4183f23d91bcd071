// Command peers runs the project's benchmark workload on other durable job
// queues, to compare them with pipeline's local mode on the same machine:
// chains of 10 no-op steps in which each handler enqueues the next;
// step-to-step is one handler's start to the next handler's start. It runs
// one chain at a time, then 200 chains at concurrency 10 and 50.
//
// It is its own module so that the project's go.mod does not gain the peers'
// dependencies. run.sh starts the servers it needs.
package main

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// chains records when each step of each chain started and signals a chain's
// end.
type chains struct {
	steps int
	mu    sync.Mutex
	start map[string][]time.Time
	done  map[string]chan struct{}
}

func newChains(steps int) *chains {
	return &chains{steps: steps, start: map[string][]time.Time{}, done: map[string]chan struct{}{}}
}

// expect registers a chain before its first step is enqueued.
func (c *chains) expect(id string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.start[id] = make([]time.Time, c.steps)
	c.done[id] = ch
	return ch
}

// started records step i of chain id starting now; the last step ends the
// chain.
func (c *chains) started(id string, i int) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, ok := c.start[id]
	if !ok || i >= len(ts) || !ts[i].IsZero() {
		return // a duplicate delivery: the first start counts
	}
	ts[i] = now
	if i == c.steps-1 {
		close(c.done[id])
	}
}

// gaps is every step-to-step interval recorded so far.
func (c *chains) gaps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var d []time.Duration
	for _, ts := range c.start {
		for i := 1; i < len(ts); i++ {
			if !ts[i].IsZero() && !ts[i-1].IsZero() {
				d = append(d, ts[i].Sub(ts[i-1]))
			}
		}
	}
	return d
}

func quantileMS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))]) / float64(time.Millisecond)
}

// result is one line of the output: key=value fields that markdownTable
// reads.
type result struct {
	peer, mode         string
	chains, concurrent int
	wall               time.Duration
	gaps               []time.Duration
	steps              int
	cpu                time.Duration // CPU time of this process and the server's during the run
}

func (r result) String() string {
	total := r.chains * r.steps
	return fmt.Sprintf("peer=%s mode=%s chains=%d conc=%d p50_ms=%.3f p99_ms=%.3f steps/s=%.0f cpu_us/step=%.0f",
		r.peer, r.mode, r.chains, r.concurrent, quantileMS(r.gaps, 0.5), quantileMS(r.gaps, 0.99),
		float64(total)/r.wall.Seconds(), float64(r.cpu)/float64(time.Microsecond)/float64(total))
}

// runChains starts n chains, at most conc at a time, with start (which
// enqueues step 0 of the chain id) and waits for each to end.
func runChains(c *chains, n, conc int, start func(id string) error) (time.Duration, error) {
	ids := make(chan string)
	errc := make(chan error, conc)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				done := c.expect(id)
				if err := start(id); err != nil {
					errc <- err
					return
				}
				select {
				case <-done:
				case <-time.After(60 * time.Second):
					errc <- fmt.Errorf("chain %s did not finish within 60 s", id)
					return
				}
			}
		}()
	}
	var err error
loop:
	for i := range n {
		select {
		case ids <- fmt.Sprintf("c%d-%d", time.Now().UnixNano(), i):
		case err = <-errc:
			break loop
		}
	}
	close(ids)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return time.Since(t0), err
}
