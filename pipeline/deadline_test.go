package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

func parseOne(t *testing.T, head string) (*pipeline.Definition, error) {
	t.Helper()
	defs, err := pipeline.Parse("p.yaml", []byte(head+"\nsteps:\n  - {name: a, kind: go}\n"), testRegistry())
	if err != nil {
		return nil, err
	}
	return defs[0], nil
}

func TestDeadlineForms(t *testing.T) {
	cases := []struct {
		head string
		date string
		want time.Time // UTC
	}{
		{"name: p\ntime_zone: Europe/Paris\nschedule: \"0 6 * * *\"\ndeadline: \"07:30\"", "2026-12-01", time.Date(2026, 12, 1, 6, 30, 0, 0, time.UTC)},
		{"name: p\ntime_zone: Europe/Paris\nschedule: \"0 22 * * *\"\ndeadline: \"+1d 02:00\"", "2026-12-01", time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)},
		{"name: p\ntime_zone: Europe/Paris\nschedule: \"0 6 * * *\"\ndeadline: 90m", "2026-12-01", time.Date(2026, 12, 1, 6, 30, 0, 0, time.UTC)},
		// Summer time: 07:30 CEST is 05:30 UTC.
		{"name: p\ntime_zone: Europe/Paris\nschedule: \"0 6 * * *\"\ndeadline: \"07:30\"", "2026-07-01", time.Date(2026, 7, 1, 5, 30, 0, 0, time.UTC)},
		// Sao Paulo: the spring-forward day of 2018 skipped midnight.
		{"name: p\ntime_zone: America/Sao_Paulo\nschedule: \"0 0 * * *\"\ndeadline: 2h", "2018-11-04", time.Date(2018, 11, 4, 5, 0, 0, 0, time.UTC)},
		// No schedule: a wall-clock deadline still applies.
		{"name: p\ntime_zone: UTC\ndeadline: \"09:00\"", "2026-12-01", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		d, err := parseOne(t, c.head)
		if err != nil {
			t.Fatalf("%s: %v", c.head, err)
		}
		got, ok := d.DeadlineOn(c.date)
		if !ok || !got.Equal(c.want) {
			t.Errorf("%q: DeadlineOn(%s) = %s, %v; want %s", c.head, c.date, got.UTC(), ok, c.want)
		}
	}
}

func TestStartWithinDefault(t *testing.T) {
	d, err := parseOne(t, "name: p\nschedule: \"0 6 * * *\"")
	if err != nil {
		t.Fatal(err)
	}
	if d.StartWithin != pipeline.DefaultStartWithin || d.Deadline != nil {
		t.Errorf("start_within = %s, deadline %v; want the default and none", d.StartWithin, d.Deadline)
	}
	d, err = parseOne(t, "name: p\nschedule: \"0 6 * * *\"\nstart_within: 10m")
	if err != nil || d.StartWithin != 10*time.Minute {
		t.Fatalf("start_within 10m = %v, %v", d, err)
	}
	d, err = parseOne(t, "name: p")
	if err != nil || d.StartWithin != 0 {
		t.Fatalf("unscheduled start_within = %v, %v; want 0", d, err)
	}
}

func TestDeadlineValidation(t *testing.T) {
	cases := []struct {
		head string
		want string
	}{
		{"name: p\nschedule: \"0 8 * * *\"\ndeadline: \"07:30\"", `deadline "07:30" falls before the scheduled time 08:00`},
		{"name: p\nschedule: \"0 8 * * *\"\ndeadline: \"08:00\"", `"+1d 08:00"`},
		{"name: p\nschedule: \"0 6 * * *\"\ndeadline: \"25:00\"", `deadline "25:00" is not a wall-clock time`},
		{"name: p\nschedule: \"0 6 * * *\"\ndeadline: \"+9d 02:00\"", `at most +7d`},
		{"name: p\nschedule: \"0 6 * * *\"\ndeadline: -5m", `positive duration`},
		{"name: p\ndeadline: 90m", `the pipeline has no schedule`},
		{"name: p\nstart_within: 10m", `start_within "10m" needs a schedule`},
		{"name: p\nschedule: \"0 6 * * *\"\nstart_within: soon", `start_within "soon" is not a positive duration`},
		{"name: p\nschedule: \"0 6 * * *\"\nstart_within: 48h", `at most 24h`},
	}
	for _, c := range cases {
		_, err := parseOne(t, c.head)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v; want it to say %s", c.head, err, c.want)
		}
	}
	// A deadline on the next day is after any time of the day.
	if _, err := parseOne(t, "name: p\nschedule: \"0 8 * * *\"\ndeadline: \"+1d 07:30\""); err != nil {
		t.Errorf("+1d 07:30 after 08:00: %v", err)
	}
}
