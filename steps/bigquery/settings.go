package bigquery

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/pipelinehq/pipeline/steps"
)

// The checks below are plain functions, not regular expressions: label
// rules over Unicode classes with repeat counts compile into megabytes of
// program at start-up, in every binary that has the kind.

// validProject reports whether s is a Google Cloud project ID: 6 to 30
// lowercase letters, digits and hyphens, starting with a letter and not
// ending with a hyphen (optionally after a legacy "domain:" part).
func validProject(s string) bool {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if i == 0 || strings.ContainsFunc(s[:i], func(r rune) bool { return !(isLowerASCII(r) || isDigit(r) || r == '.' || r == '-') }) {
			return false
		}
		s = s[i+1:]
	}
	if len(s) < 6 || len(s) > 30 || !isLowerASCII(rune(s[0])) || s[len(s)-1] == '-' {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !(isLowerASCII(r) || isDigit(r) || r == '-') })
}

// validLocation reports whether s looks like a BigQuery location: US, EU
// or a region such as europe-west1.
func validLocation(s string) bool {
	if len(s) < 2 || len(s) > 40 || !unicode.IsLetter(rune(s[0])) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !(isLetterASCII(r) || isDigit(r) || r == '-') })
}

// validPrefix reports whether s may start a job ID: 1 to 64 job ID
// characters.
func validPrefix(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && !strings.ContainsFunc(s, func(r rune) bool { return !isJobIDChar(r) })
}

// validLabel reports whether s is a BigQuery label key (key: true) or
// value: at most 63 characters, each a lowercase or caseless letter, a
// digit, _ or -; a key is not empty and starts with a letter.
func validLabel(s string, key bool) bool {
	n := 0
	for i, r := range s {
		n++
		letter := unicode.IsLetter(r) && !unicode.IsUpper(r) && !unicode.IsTitle(r)
		if key && i == 0 && !letter {
			return false
		}
		if !letter && !isDigit(r) && r != '_' && r != '-' {
			return false
		}
	}
	return n <= 63 && (!key || n > 0)
}

func isLowerASCII(r rune) bool  { return r >= 'a' && r <= 'z' }
func isLetterASCII(r rune) bool { return isLowerASCII(r) || r >= 'A' && r <= 'Z' }
func isDigit(r rune) bool       { return r >= '0' && r <= '9' }
func isJobIDChar(r rune) bool   { return isLetterASCII(r) || isDigit(r) || r == '_' || r == '-' }

var writeDispositions = map[string]bool{"WRITE_TRUNCATE": true, "WRITE_APPEND": true, "WRITE_EMPTY": true}

// config is one step's settings, checked.
type config struct {
	project, location string
	query             *template.Template
	legacySQL         bool
	destination       *template.Template // nil: none
	destText          string             // destination_table as written
	writeDisposition  string
	labels            map[string]string
	interval          time.Duration // 0: the orchestrator's default
	prefix            string
}

// readConfig checks the settings of a step, naming every problem at once:
//
//	project:           the project the job runs in (and is billed to); required
//	location:          where the job runs: US, EU or a region; required
//	query:             the SQL, a text/template over .RunID .Pipeline .Step
//	                   .Date (YYYY-MM-DD) .Key .Attempt and .Params.NAME; required
//	use_legacy_sql:    false (default): GoogleSQL
//	destination_table: project.dataset.table or dataset.table (template)
//	write_disposition: WRITE_TRUNCATE, WRITE_APPEND or WRITE_EMPTY (with a
//	                   destination table)
//	labels:            job labels, added to pipeline and pipeline-step
//	check_interval:    the wait between checks (default 30s)
//	job_prefix:        the start of job IDs (default "pipeline"); deployments
//	                   that share a project and pipeline names must differ
func readConfig(settings map[string]any) (*config, error) {
	s := steps.ReadSettings(Kind, settings)
	c := &config{
		project:          s.String("project", true),
		location:         s.String("location", true),
		legacySQL:        s.Bool("use_legacy_sql"),
		writeDisposition: strings.ToUpper(s.String("write_disposition", false)),
		labels:           s.StringMap("labels"),
		interval:         s.Duration("check_interval", false),
		prefix:           s.String("job_prefix", false),
	}
	query := s.String("query", true)
	dest := s.String("destination_table", false)
	c.destText = dest
	if c.project != "" && !validProject(c.project) {
		s.Problemf("project %q is not a Google Cloud project ID (6 to 30 lowercase letters, digits and hyphens)", c.project)
	}
	if c.location != "" && !validLocation(c.location) {
		s.Problemf("location %q is not a BigQuery location such as US, EU or europe-west1", c.location)
	}
	if query != "" {
		c.query = parseTemplate(s, "query", query)
	}
	if dest != "" {
		if c.destination = parseTemplate(s, "destination_table", dest); c.destination != nil && !strings.Contains(dest, "{{") {
			if _, err := tableRef(dest, c.project); err != nil {
				s.Problemf("destination_table %v", err)
			}
		}
	}
	if c.writeDisposition != "" {
		switch {
		case !writeDispositions[c.writeDisposition]:
			s.Problemf("write_disposition %q is not one of WRITE_TRUNCATE, WRITE_APPEND, WRITE_EMPTY", c.writeDisposition)
		case dest == "":
			s.Problemf("write_disposition applies only with a destination_table")
		}
	}
	for _, k := range sortedKeys(c.labels) {
		if !validLabel(k, true) {
			s.Problemf("labels: key %q must start with a lowercase letter and hold at most 63 lowercase letters, digits, _ and -", k)
		}
		if !validLabel(c.labels[k], false) {
			s.Problemf("labels.%s: value %q may hold at most 63 lowercase letters, digits, _ and -", k, c.labels[k])
		}
	}
	if len(c.labels) > 60 {
		s.Problemf("labels: %d labels, at most 60 (BigQuery allows 64 and the step adds its own)", len(c.labels))
	}
	if c.prefix == "" {
		c.prefix = DefaultJobPrefix
	} else if !validPrefix(c.prefix) {
		s.Problemf("job_prefix %q may hold only letters, digits, _ and - (at most 64)", c.prefix)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

func parseTemplate(s *steps.Settings, what, text string) *template.Template {
	t, err := template.New(what).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		s.Problemf("%s: bad template: %v", what, err)
		return nil
	}
	return t
}

// templateFuncs are the functions the templates have beyond text/template's.
var templateFuncs = template.FuncMap{
	// sqlstring quotes a value as a GoogleSQL string literal.
	"sqlstring": sqlString,
}

// sqlString quotes v as a GoogleSQL string literal ('...' with \ escapes).
func sqlString(v string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range v {
		switch r {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// tableRef parses project.dataset.table or dataset.table (in project).
func tableRef(s, project string) (ref [3]string, err error) {
	parts := strings.Split(strings.Trim(s, "`"), ".")
	if len(parts) == 2 {
		parts = append([]string{project}, parts...)
	}
	if len(parts) != 3 {
		return ref, fmt.Errorf("%q is not dataset.table or project.dataset.table", s)
	}
	for i, p := range parts {
		if p == "" {
			return ref, fmt.Errorf("%q has an empty part", s)
		}
		ref[i] = p
	}
	return ref, nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
