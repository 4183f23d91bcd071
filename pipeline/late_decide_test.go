package pipeline

import (
	"testing"
	"time"
)

func TestDecideLate(t *testing.T) {
	dl := time.Date(2026, 12, 1, 6, 30, 0, 0, time.UTC)
	noted := map[string]string{NoteDeadline: "2026-12-01T06:30:00Z"}
	with := func(k, v string) map[string]string {
		m := map[string]string{NoteDeadline: "2026-12-01T06:30:00Z"}
		m[k] = v
		return m
	}
	cases := []struct {
		name        string
		r           Run
		now         time.Time
		note, claim bool
	}{
		{"running, before the deadline, not noted", Run{Status: RunRunning}, dl.Add(-time.Hour), true, false},
		{"running, before the deadline, noted", Run{Status: RunRunning, Notes: noted}, dl.Add(-time.Hour), false, false},
		{"at the deadline exactly: not late", Run{Status: RunRunning, Notes: noted}, dl, false, false},
		{"past the deadline", Run{Status: RunRunning, Notes: noted}, dl.Add(time.Second), false, true},
		{"past the deadline, never noted", Run{Status: RunPending}, dl.Add(time.Hour), true, true},
		{"alert sent", Run{Status: RunRunning, Notes: with(NoteLate, alertSent)}, dl.Add(time.Hour), false, false},
		{"alert being sent", Run{Status: RunRunning, Notes: with(NoteLate, alertOwed(dl.Add(59*time.Minute)))}, dl.Add(time.Hour), false, false},
		{"alert claim abandoned", Run{Status: RunRunning, Notes: with(NoteLate, alertOwed(dl))}, dl.Add(time.Hour), false, true},
		{"finished", Run{Status: RunSucceeded}, dl.Add(time.Hour), false, false},
		{"another deadline noted (definition changed)", Run{Status: RunRunning, Notes: map[string]string{NoteDeadline: "2026-12-01T07:00:00Z"}}, dl.Add(-time.Hour), true, false},
	}
	for _, c := range cases {
		note, claim := decideLate(c.r, dl, c.now)
		if note != c.note || claim != c.claim {
			t.Errorf("%s: decideLate = note %v claim %v; want %v %v", c.name, note, claim, c.note, c.claim)
		}
	}
}
