package pipeline

import (
	"strings"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDate("2028-02-29", paris)
	if err != nil || !got.Equal(time.Date(2028, 2, 29, 0, 0, 0, 0, paris)) {
		t.Fatalf("ParseDate(2028-02-29) = %v, %v", got, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"2026-02-29", `"2026-02-29" does not exist: February 2026 has 28 days`},
		{"2026-13-01", `"2026-13-01" does not exist: there is no month 13`},
		{"2026-00-10", `"2026-00-10" does not exist: there is no month 0`},
		{"2026-04-31", `"2026-04-31" does not exist: April 2026 has 30 days`},
		{"2026-01-00", `"2026-01-00" does not exist: January 2026 has 31 days`},
		{"2026-1-5", `"2026-1-5" is not a date YYYY-MM-DD`},
		{"yesterday", `"yesterday" is not a date YYYY-MM-DD`},
		{"", `"" is not a date YYYY-MM-DD`},
	} {
		_, err := ParseDate(tc.in, time.UTC)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseDate(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"daily", "weekly", "fanout"}
	for in, want := range map[string]string{"daly": "daily", "Daily": "daily", "weakly": "weekly", "fanot": "fanout", "x": "", "monthly-report": ""} {
		if got := closest(in, names); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
