package emulator

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 7 ", 7 * time.Second},
		{"-4", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"86400", maxRetryAfter},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	e := &Emulator{cfg: Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000}
	for i, w := range want {
		if got := e.backoff(i + 1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
	e.cfg.MaxBackoff = time.Hour * 1000
	if got := e.backoff(1000); got != 100*time.Millisecond<<maxDoublings {
		t.Errorf("backoff(1000) = %s, want %s (max doublings)", got, 100*time.Millisecond<<maxDoublings)
	}
}

func TestReuseWindow(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	newEmu := func(window time.Duration) *Emulator {
		return &Emulator{cfg: Config{ReuseWindow: window}, tasks: map[string]*task{}, used: map[string]time.Time{}}
	}
	e := newEmu(time.Hour)
	e.used["a"] = t0
	if !e.taken("a", t0.Add(59*time.Minute)) {
		t.Error("name free inside the window")
	}
	if e.taken("a", t0.Add(time.Hour)) {
		t.Error("name taken after the window")
	}
	if _, ok := e.used["a"]; ok {
		t.Error("expired name not forgotten")
	}

	e = newEmu(0)
	e.used["a"] = t0
	if !e.taken("a", t0.Add(1000*time.Hour)) {
		t.Error("window 0: name freed")
	}

	// Retiring sweeps expired names once the map has grown.
	e = newEmu(time.Minute)
	for i := range 2000 {
		e.used[strconv.Itoa(i)] = t0
	}
	tk := &task{pb: &cloudtaskspb.Task{Name: "fresh"}}
	e.tasks["fresh"] = tk
	e.retire(tk, t0.Add(2*time.Minute))
	if len(e.used) != 1 || len(e.tasks) != 0 {
		t.Errorf("after sweep: %d names kept, %d tasks, want 1 and 0", len(e.used), len(e.tasks))
	}
	if !e.taken("fresh", t0.Add(2*time.Minute)) {
		t.Error("retired name free")
	}

	// A negative window frees names at once.
	e = newEmu(-1)
	tk = &task{pb: &cloudtaskspb.Task{Name: "x"}}
	e.tasks["x"] = tk
	if !e.taken("x", t0) {
		t.Error("stored task's name free")
	}
	e.retire(tk, t0)
	if e.taken("x", t0) {
		t.Error("negative window: name taken after retire")
	}
}
