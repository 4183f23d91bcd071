package doctor

import (
	"fmt"
	"strings"
)

// Severity ranks a finding.
type Severity int

// Severities, from harmless to fatal.
const (
	// SeverityWarning is suspicious but works; it does not fail the doctor.
	SeverityWarning Severity = iota + 1
	// SeverityError breaks calls, runs or notifications.
	SeverityError
)

func (s Severity) String() string {
	switch s {
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText writes "error" or "warning".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one problem: what is wrong, why it breaks, and how to fix it.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check names the check that found it, e.g. "audience".
	Check string `json:"check"`
	// Subject is what the finding is about, e.g. "pipeline daily, step extract".
	Subject string `json:"subject,omitempty"`
	// Problem says what is wrong.
	Problem string `json:"problem"`
	// Why says how it breaks the service.
	Why string `json:"why"`
	// Fix is the command (usually gcloud) or edit that fixes it.
	Fix string `json:"fix"`
}

// String renders the finding on several lines for a terminal.
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s]", strings.ToUpper(f.Severity.String()), f.Check)
	if f.Subject != "" {
		fmt.Fprintf(&b, " %s", f.Subject)
	}
	fmt.Fprintf(&b, ": %s\n  why: %s\n  fix: %s", f.Problem, f.Why, f.Fix)
	return b.String()
}

// Failed reports whether any finding is an error.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Count returns the number of errors and warnings in fs.
func Count(fs []Finding) (errors, warnings int) {
	for _, f := range fs {
		switch f.Severity {
		case SeverityError:
			errors++
		case SeverityWarning:
			warnings++
		}
	}
	return errors, warnings
}
