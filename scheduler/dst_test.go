package scheduler_test

import (
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/scheduler"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s: %v", name, err)
	}
	return loc
}

// On a spring-forward day a daily tick whose wall time does not exist fires
// at the first instant after the gap, on the same date; the days around it
// keep their wall time.
func TestDailyTickInTheSpringForwardGapFiresAfterTheGap(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	s, err := scheduler.Parse("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 27, 12, 0, 0, 0, paris)
	var got []string
	for range 4 {
		at = s.Next(at)
		got = append(got, at.Format(time.RFC3339)+" "+at.In(paris).Format(time.DateOnly))
	}
	want := []string{
		"2026-03-28T02:30:00+01:00 2026-03-28",
		"2026-03-29T03:00:00+02:00 2026-03-29", // 02:30 does not exist: 03:00 CEST
		"2026-03-30T02:30:00+02:00 2026-03-30",
		"2026-03-31T02:30:00+02:00 2026-03-31",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ticks:\n got %v\nwant %v", got, want)
		}
	}
	// The run date the start route derives from that scheduled time.
	if d := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC).In(paris).Format(time.DateOnly); d != "2026-03-29" {
		t.Fatalf("run date %s", d)
	}
}

func TestGapTicksOnlyWhereTheScheduleHasThem(t *testing.T) {
	paris, ny := mustLoad(t, "Europe/Paris"), mustLoad(t, "America/New_York")
	for _, tc := range []struct {
		spec string
		from time.Time
		want string
	}{
		// A schedule outside the gap is untouched.
		{"0 6 * * *", time.Date(2026, 3, 28, 12, 0, 0, 0, paris), "2026-03-29T06:00:00+02:00"},
		// Every 20 minutes through the gap: one tick at its end, then on.
		{"*/20 * * * *", time.Date(2026, 3, 29, 1, 50, 0, 0, paris), "2026-03-29T03:00:00+02:00"},
		// A Monday-only schedule does not fire on the (Sunday) gap.
		{"30 2 * * 1", time.Date(2026, 3, 28, 12, 0, 0, 0, paris), "2026-03-30T02:30:00+02:00"},
		// Falling back repeats 02:30 (wall time exists): the first one.
		{"30 2 * * *", time.Date(2026, 10, 25, 0, 0, 0, 0, paris), "2026-10-25T02:30:00+02:00"},
		// Another zone's gap: New York skips 02:00-03:00 on 2026-03-08.
		{"15 2 * * *", time.Date(2026, 3, 7, 12, 0, 0, 0, ny), "2026-03-08T03:00:00-04:00"},
		// UTC has no gap.
		{"30 2 * * *", time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), "2026-03-29T02:30:00Z"},
	} {
		s, err := scheduler.Parse(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(tc.from).Format(time.RFC3339); got != tc.want {
			t.Errorf("%q from %s: next %s, want %s", tc.spec, tc.from.Format(time.RFC3339), got, tc.want)
		}
	}
}
