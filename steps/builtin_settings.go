package steps

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Settings reads the kind-specific settings of one step and collects every
// problem it meets, so that a factory can report them all at once:
//
//	s := steps.ReadSettings("sleep", settings)
//	d := s.Duration("duration", true)
//	if err := s.Err(); err != nil { return nil, err }
//
// Err also reports every key that no getter asked for.
type Settings struct {
	kind     string
	m        map[string]any
	used     map[string]bool
	problems []error
}

// ReadSettings starts reading the settings m (may be nil) of a step of kind.
func ReadSettings(kind string, m map[string]any) *Settings {
	return &Settings{kind: kind, m: m, used: map[string]bool{}}
}

// Problemf records a problem found by the caller's own checks.
func (s *Settings) Problemf(format string, args ...any) {
	s.problems = append(s.problems, fmt.Errorf("%s: "+format, append([]any{s.kind}, args...)...))
}

// Has reports whether key is set (and marks it as known).
func (s *Settings) Has(key string) bool {
	s.used[key] = true
	_, ok := s.m[key]
	return ok
}

func (s *Settings) get(key string, required bool) (any, bool) {
	s.used[key] = true
	v, ok := s.m[key]
	if !ok || v == nil {
		if required {
			s.Problemf("%s is required", key)
		}
		return nil, false
	}
	return v, true
}

// String returns the string setting key, or "" when absent.
func (s *Settings) String(key string, required bool) string {
	v, ok := s.get(key, required)
	if !ok {
		return ""
	}
	str, isStr := v.(string)
	if !isStr {
		s.Problemf("%s must be a string, not %T", key, v)
		return ""
	}
	if required && str == "" {
		s.Problemf("%s is required", key)
	}
	return str
}

// Duration returns the duration setting key (a string such as "90s"), or 0
// when absent. The duration must be positive.
func (s *Settings) Duration(key string, required bool) time.Duration {
	str := s.String(key, required)
	if str == "" {
		return 0
	}
	d, err := time.ParseDuration(str)
	if err != nil || d <= 0 {
		s.Problemf("%s %q is not a positive duration like 30s", key, str)
		return 0
	}
	return d
}

// Bool returns the boolean setting key, or false when absent.
func (s *Settings) Bool(key string) bool {
	v, ok := s.get(key, false)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		s.Problemf("%s must be true or false, not %v", key, v)
	}
	return b
}

// Int returns the integer setting key, or def when absent; it must lie in
// [lo, hi].
func (s *Settings) Int(key string, def, lo, hi int) int {
	v, ok := s.get(key, false)
	if !ok {
		return def
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case uint64:
		n = int(min(x, math.MaxInt))
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			s.Problemf("%s must be a whole number, not %v", key, x)
			return def
		}
		n = int(x)
	default:
		s.Problemf("%s must be a whole number, not %T", key, v)
		return def
	}
	if n < lo || n > hi {
		s.Problemf("%s %d must be between %d and %d", key, n, lo, hi)
		return def
	}
	return n
}

// Strings returns the list-of-strings setting key, or nil when absent.
func (s *Settings) Strings(key string) []string {
	v, ok := s.get(key, false)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		s.Problemf("%s must be a list of strings, not %T", key, v)
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		str, isStr := e.(string)
		if !isStr {
			s.Problemf("%s[%d] must be a string, not %T", key, i, e)
			continue
		}
		out = append(out, str)
	}
	return out
}

// StringMap returns the mapping setting key with scalar values rendered as
// strings, or nil when absent.
func (s *Settings) StringMap(key string) map[string]string {
	v, ok := s.get(key, false)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		s.Problemf("%s must be a mapping, not %T", key, v)
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		switch e := m[k].(type) {
		case string:
			out[k] = e
		case int, int64, uint64, float64, bool:
			out[k] = fmt.Sprint(e)
		default:
			s.Problemf("%s.%s must be a string, not %T", key, k, e)
		}
	}
	return out
}

// Err returns every problem recorded, plus one for each key of the settings
// that no getter asked for, or nil.
func (s *Settings) Err() error {
	var unknown []string
	for _, k := range sortedKeys(s.m) {
		if !s.used[k] {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	problems := s.problems
	if len(unknown) > 0 {
		known := make([]string, 0, len(s.used))
		for k := range s.used {
			known = append(known, k)
		}
		sort.Strings(known)
		problems = append(problems, fmt.Errorf("%s: unknown setting %s (known: %s)",
			s.kind, strings.Join(unknown, ", "), strings.Join(known, ", ")))
	}
	return errors.Join(problems...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
