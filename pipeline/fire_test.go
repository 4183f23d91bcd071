package pipeline

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestFireTimesDST pins the rule on the daylight-saving days of Paris (spring
// forward 2026-03-29 02:00->03:00, fall back 2026-10-25 03:00->02:00) and Sao
// Paulo (no DST since 2019, but the tz database has its old changes, e.g. the
// 2018-11-04 00:00->01:00 spring forward and 2019-02-17 00:00->23:00 fall back).
func TestFireTimesDST(t *testing.T) {
	paris := mustLoc(t, "Europe/Paris")
	sp := mustLoc(t, "America/Sao_Paulo")
	cases := []struct {
		name  string
		cron  string
		loc   *time.Location
		after time.Time
		want  time.Time // UTC
	}{
		{"paris normal day", "30 2 * * *", paris, time.Date(2026, 3, 27, 12, 0, 0, 0, paris), time.Date(2026, 3, 28, 1, 30, 0, 0, time.UTC)},
		{"paris skipped 02:30 fires at 03:00 CEST", "30 2 * * *", paris, time.Date(2026, 3, 28, 12, 0, 0, 0, paris), time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{"paris day after spring forward", "30 2 * * *", paris, time.Date(2026, 3, 29, 12, 0, 0, 0, paris), time.Date(2026, 3, 30, 0, 30, 0, 0, time.UTC)},
		{"paris 06:00 on spring forward day", "0 6 * * *", paris, time.Date(2026, 3, 28, 12, 0, 0, 0, paris), time.Date(2026, 3, 29, 4, 0, 0, 0, time.UTC)},
		{"paris repeated 02:30 fires once, first", "30 2 * * *", paris, time.Date(2026, 10, 24, 12, 0, 0, 0, paris), time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
		{"paris after the first 02:30, next day", "30 2 * * *", paris, time.Date(2026, 10, 25, 0, 45, 0, 0, time.UTC), time.Date(2026, 10, 26, 1, 30, 0, 0, time.UTC)},
		{"sao paulo skipped midnight fires at 01:00", "0 0 * * *", sp, time.Date(2018, 11, 3, 12, 0, 0, 0, sp), time.Date(2018, 11, 4, 3, 0, 0, 0, time.UTC)},
		{"sao paulo repeated 23:30 fires once, first", "30 23 * * *", sp, time.Date(2019, 2, 16, 12, 0, 0, 0, sp), time.Date(2019, 2, 17, 1, 30, 0, 0, time.UTC)},
		{"sao paulo today (no DST)", "0 6 * * *", sp, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSchedule(c.cron)
			if err != nil {
				t.Fatal(err)
			}
			got := NextFire(s, c.loc, c.after)
			if !got.Equal(c.want) {
				t.Errorf("NextFire(%q after %s) = %s; want %s", c.cron, c.after, got.UTC(), c.want)
			}
			// PrevFire at the fire time is that fire time, and just before
			// it is an earlier one.
			if p := PrevFire(s, c.loc, got); !p.Equal(got) {
				t.Errorf("PrevFire(at %s) = %s; want the same instant", got.UTC(), p.UTC())
			}
			if p := PrevFire(s, c.loc, got.Add(-time.Second)); !p.Before(got) || p.IsZero() {
				t.Errorf("PrevFire(just before %s) = %s; want an earlier fire", got.UTC(), p.UTC())
			}
		})
	}
}

// TestFireTimesRandomized checks, over random instants and schedules, that
// NextFire is strictly after its argument, that no fire lies between them
// (PrevFire of the instant before NextFire is at or before the argument), and
// that FirstFireOn agrees with NextFire from the start of the day.
func TestFireTimesRandomized(t *testing.T) {
	locs := []*time.Location{mustLoc(t, "Europe/Paris"), mustLoc(t, "America/Sao_Paulo"), time.UTC, mustLoc(t, "Australia/Lord_Howe")}
	crons := []string{"0 6 * * *", "30 2 * * *", "*/15 * * * *", "0 0 * * 1-5", "45 23 * * *", "0 2 1 * *"}
	base := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
	seed := uint64(12345)
	for i := range 3000 {
		seed = seed*6364136223846793005 + 1442695040888963407
		at := base.Add(time.Duration(seed>>20%uint64(9*365*24*3600)) * time.Second)
		loc := locs[i%len(locs)]
		s, _ := ParseSchedule(crons[(i/len(locs))%len(crons)])
		next := NextFire(s, loc, at)
		if !next.After(at) {
			t.Fatalf("NextFire(%s) = %s, not after", at, next)
		}
		if p := PrevFire(s, loc, next.Add(-time.Nanosecond)); p.After(at) {
			t.Fatalf("%s in %s: a fire at %s lies between %s and NextFire %s", crons[(i/len(locs))%len(crons)], loc, p, at, next)
		}
		date := next.In(loc).Format(time.DateOnly)
		first := FirstFireOn(s, loc, date)
		if first.IsZero() || first.After(next) || first.In(loc).Format(time.DateOnly) != date && !first.Equal(next) {
			t.Fatalf("FirstFireOn(%s) = %s; NextFire gave %s", date, first, next)
		}
	}
}
