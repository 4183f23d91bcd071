package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxSinceDays bounds how far back a "since" reaches when given as a span:
// further back is a typo (800000d would lie before year 1, where times
// cannot be written as JSON; a number past int64 would wrap to the future).
const MaxSinceDays = 36500

// sinceError is a bad "since"; it is ErrInvalid (a 400) and its text names
// the value and the accepted forms without a prefix, so that the CLI can say
// "--since ..." and the API "since ...".
type sinceError struct{ msg string }

func (e *sinceError) Error() string        { return e.msg }
func (e *sinceError) Is(target error) bool { return target == ErrInvalid }

// ParseSince accepts a span back from now ("7d", "36h", at most
// MaxSinceDays days) or a date (YYYY-MM-DD) or RFC 3339 time.
func ParseSince(v string, now time.Time) (time.Time, error) {
	const forms = "a span back (7d, 36h), a date (2026-11-01) or an RFC 3339 time"
	tooFar := &sinceError{fmt.Sprintf("since %q reaches back more than %d days (100 years); give a shorter span or a date", v, MaxSinceDays)}
	if n, ok := strings.CutSuffix(v, "d"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days > MaxSinceDays { // err: beyond int64
			return time.Time{}, tooFar
		}
		return now.AddDate(0, 0, -int(days)), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		if d > MaxSinceDays*24*time.Hour {
			return time.Time{}, tooFar
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, &sinceError{fmt.Sprintf("since %q is not %s", v, forms)}
}
