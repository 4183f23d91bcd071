package pipeline

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// datePattern is the shape of a run date; a string of this shape that
// time.Parse refuses names a day that does not exist.
var datePattern = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})$`)

// ParseDate parses a run date YYYY-MM-DD at midnight in loc. Its error names
// the value and says whether it is not a date at all or a day that does not
// exist ("2026-02-29": February 2026 has 28 days; "2026-13-01": no month 13);
// callers prefix the field, e.g. `date "2026-02-29" does not exist: ...`.
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err == nil {
		return t, nil
	}
	m := datePattern.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("%q is not a date YYYY-MM-DD", s)
	}
	year, _ := strconv.Atoi(m[1])
	month, _ := strconv.Atoi(m[2])
	if month < 1 || month > 12 {
		return time.Time{}, fmt.Errorf("%q does not exist: there is no month %d (01 to 12)", s, month)
	}
	days := time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	return time.Time{}, fmt.Errorf("%q does not exist: %s %d has %d days", s, time.Month(month), year, days)
}
