package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// The background sender keeps each run's events in order, sends other runs
// while one is held, refuses events beyond its backlog without blocking,
// and Close ends what a notifier still holds.
func TestSenderKeepsEachRunsOrderAndIsBounded(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]int{}
	release := make(chan struct{})
	notify := func(ctx context.Context, e Event) error {
		seq := e.Step.Attempts
		if e.Run.ID == "r0" && seq == 0 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		got[e.Run.ID] = append(got[e.Run.ID], seq)
		return nil
	}
	s := newSender(notify, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const runs, per = 5, 50
	for i := range per {
		for r := range runs {
			e := Event{Kind: EventStepStarted, Run: Run{ID: fmt.Sprintf("r%d", r)}, Step: &StepRun{Attempts: i}}
			if !s.send(sendJob{ctx: context.Background(), e: e}) {
				t.Fatalf("event %d of r%d refused", i, r)
			}
		}
	}
	// r0 is held at its first event; the others are all sent meanwhile.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := 0
		for r := 1; r < runs; r++ {
			if len(got[fmt.Sprintf("r%d", r)]) == per {
				done++
			}
		}
		held := len(got["r0"])
		mu.Unlock()
		if held != 0 {
			t.Fatalf("r0 sent %d events past its held first one", held)
		}
		if done == runs-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other runs not sent while r0 is held (%d of %d done)", done, runs-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if err := s.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := make([]int, per)
	for i := range want {
		want[i] = i
	}
	for r := range runs {
		if id := fmt.Sprintf("r%d", r); !slices.Equal(got[id], want) {
			t.Fatalf("%s sent in order %v", id, got[id])
		}
	}

	// A full backlog refuses at once; Close with no grace left ends the
	// held call and gives up the rest.
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	ended := make(chan error, 1)
	s = newSender(func(ctx context.Context, e Event) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-block:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range senderBacklog {
		e := Event{Kind: EventStepStarted, Run: Run{ID: "big"}, Step: &StepRun{Attempts: i}}
		if !s.send(sendJob{ctx: context.Background(), e: e, after: func(_ context.Context, err error) {
			if i == 0 {
				ended <- err
			}
		}}) {
			t.Fatalf("event %d refused below the backlog", i)
		}
	}
	if s.send(sendJob{ctx: context.Background(), e: Event{Run: Run{ID: "other"}}}) {
		t.Fatal("an event beyond the backlog was queued")
	}
	<-entered
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.close(gone); err == nil {
		t.Fatal("close reported everything sent")
	}
	if err := <-ended; err == nil {
		t.Fatal("the held call was not ended by close")
	}
	if s.send(sendJob{ctx: context.Background(), e: Event{Run: Run{ID: "late"}}}) {
		t.Fatal("a closed sender queued an event")
	}
	close(block)
}
