package ledgertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// testMarks checks the mark promises: create once (a second create returns the
// stored mark), round trip of every field, compare-and-swap updates, missing
// marks, and one winner among concurrent creates and updates.
func (s suite) testMarks(t *testing.T) {
	ctx := context.Background()
	l := s.newLedger(t)
	p := uniqueName(t)
	created := at(0)

	m := pipeline.NewMark(pipeline.MarkMissedStart, p, "2026-03-14", created)
	m.Fields["alert"] = "sent"
	m.Fields["expected"] = "2026-03-14T06:00:00Z"
	stored, ok, err := l.CreateMark(ctx, m)
	if err != nil || !ok {
		t.Fatalf("CreateMark = created %v, %v; want a new mark", ok, err)
	}
	if stored.Version == 0 {
		t.Error("created mark has no version")
	}

	// A second create (another instance, a duplicate tick) changes nothing.
	again := pipeline.NewMark(pipeline.MarkMissedStart, p, "2026-03-14", created.Add(time.Hour))
	again.Fields["alert"] = "owed"
	dup, ok, err := l.CreateMark(ctx, again)
	if err != nil || ok {
		t.Fatalf("second CreateMark = created %v, %v; want the stored mark", ok, err)
	}
	if dup.Fields["alert"] != "sent" || dup.Version != stored.Version {
		t.Errorf("second CreateMark returned %+v; want the first mark unchanged", dup)
	}

	got, err := l.GetMark(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Kind != m.Kind || got.Pipeline != p || got.Key != "2026-03-14" ||
		got.Fields["alert"] != "sent" || got.Fields["expected"] != m.Fields["expected"] ||
		!sameMicro(got.CreatedAt, created) || got.Version != stored.Version {
		t.Errorf("GetMark = %+v; want what was created (%+v)", got, m)
	}

	// Compare-and-swap.
	got.Fields["followup"] = "sent"
	got.UpdatedAt = created.Add(time.Minute)
	upd, err := l.UpdateMark(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Version == got.Version {
		t.Error("UpdateMark did not change the version")
	}
	stale := got
	stale.Fields = map[string]string{"followup": "lost"}
	if _, err := l.UpdateMark(ctx, stale); !errors.Is(err, pipeline.ErrConflict) {
		t.Errorf("UpdateMark with a stale version = %v; want ErrConflict", err)
	}
	back, err := l.GetMark(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if back.Fields["followup"] != "sent" || back.Fields["alert"] != "sent" || back.Version != upd.Version ||
		!sameMicro(back.UpdatedAt, created.Add(time.Minute)) {
		t.Errorf("after update GetMark = %+v; want followup=sent at the new version", back)
	}

	// Missing marks.
	missing := pipeline.NewMark(pipeline.MarkPause, uniqueName(t), "", created)
	if _, err := l.GetMark(ctx, missing.ID); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("GetMark of a missing mark = %v; want ErrNotFound", err)
	}
	missing.Version = stored.Version // a version some record had
	if _, err := l.UpdateMark(ctx, missing); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("UpdateMark of a missing mark = %v; want ErrNotFound", err)
	}

	// Marks of another pipeline or kind are other records.
	pause := pipeline.NewMark(pipeline.MarkPause, p, "", created)
	if _, ok, err := l.CreateMark(ctx, pause); err != nil || !ok {
		t.Fatalf("CreateMark of the pause mark = %v, %v; want a new mark", ok, err)
	}

	s.markRace(ctx, t, l)
}

// markRace checks that of concurrent creates of one mark exactly one creates
// it, and of concurrent updates from one version exactly one wins.
func (s suite) markRace(ctx context.Context, t *testing.T, l pipeline.Ledger) {
	const n = 10
	m := pipeline.NewMark(pipeline.MarkMissedStart, uniqueName(t), "2026-03-15", at(0))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		creates int
		last    pipeline.Mark
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, ok, err := l.CreateMark(ctx, m)
			if err != nil {
				t.Errorf("concurrent CreateMark: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				creates++
			}
			last = got
		}()
	}
	wg.Wait()
	if creates != 1 {
		t.Fatalf("%d concurrent creates created the mark %d times; want once", n, creates)
	}
	wins := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := last
			w.Fields = map[string]string{"alert": "owed", "by": string(rune('a' + i))}
			_, err := l.UpdateMark(ctx, w)
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, pipeline.ErrConflict):
				t.Errorf("concurrent UpdateMark: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent updates from one version: %d won; want exactly 1", n, wins)
	}
}

// sameMicro compares instants at the microsecond precision every backend keeps.
func sameMicro(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}
