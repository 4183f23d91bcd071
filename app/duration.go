package app

import "time"

// Duration is a duration setting whose parse error waits for
// Config.Validate, so that a bad value (PIPELINE_LEASE_GRACE=abc) is listed
// with every other configuration problem instead of hiding them.
type Duration struct {
	time.Duration
	text string
	err  error
}

// UnmarshalText keeps the text and its parse error for Validate.
func (d *Duration) UnmarshalText(b []byte) error {
	d.text = string(b)
	d.Duration, d.err = time.ParseDuration(d.text)
	return nil
}

// durationOf is a Duration set in code.
func durationOf(v time.Duration) Duration { return Duration{Duration: v, text: v.String()} }
