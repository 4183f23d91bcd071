package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/pipelinehq/pipeline/steps"
)

// fileStep is the YAML shape of a step; kind settings are the remaining keys.
type fileStep struct {
	Name        string            `yaml:"name"`
	Kind        string            `yaml:"kind"`
	After       *[]string         `yaml:"after"`
	Timeout     string            `yaml:"timeout"`
	MaxAttempts *int              `yaml:"max_attempts"`
	Params      map[string]string `yaml:"params"`
	Rest        map[string]any    `yaml:",inline"`
}

type fileDef struct {
	Name           string            `yaml:"name"`
	TimeZone       string            `yaml:"time_zone"`
	Schedule       string            `yaml:"schedule"`
	MaxRunDuration string            `yaml:"max_run_duration"`
	Deadline       string            `yaml:"deadline"`
	StartWithin    string            `yaml:"start_within"`
	Params         map[string]string `yaml:"params"`
	Steps          []fileStep        `yaml:"steps"`
}

// CronParser parses the five-field schedules that Cloud Scheduler accepts.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a five-field cron schedule.
func ParseSchedule(s string) (cron.Schedule, error) { return cronParser.Parse(s) }

// LoadFiles reads pipeline files (a path may be a directory of *.yaml/*.yml)
// and returns the catalog, or an error listing every problem found.
func LoadFiles(paths []string, reg *steps.Registry) (*Catalog, error) {
	var defs []*Definition
	var problems []error
	seen := map[string]string{}
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", f, err))
				continue
			}
			ds, err := Parse(f, data, reg)
			if err != nil {
				problems = append(problems, err)
			}
			for _, d := range ds {
				if prev, dup := seen[d.Name]; dup {
					problems = append(problems, fmt.Errorf("%s: pipeline %q is also defined in %s", f, d.Name, prev))
					continue
				}
				seen[d.Name] = f
				defs = append(defs, d)
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("no pipelines found in %s", strings.Join(paths, ", "))
	}
	return NewCatalog(defs...), nil
}

func expand(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("pipeline file: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(p, pat))
		out = append(out, m...)
	}
	sort.Strings(out)
	return out, nil
}

// Parse decodes one file holding one or more YAML documents, each a pipeline,
// and validates them. The error lists every problem, each prefixed with the
// file and pipeline; valid definitions are returned even when others fail.
func Parse(file string, data []byte, reg *steps.Registry) ([]*Definition, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var defs []*Definition
	var problems []error
	for i := 0; ; i++ {
		var fd fileDef
		err := dec.Decode(&fd)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: document %d: %w", file, i+1, err))
			break
		}
		d, errs := build(fd, reg)
		for _, e := range errs {
			problems = append(problems, fmt.Errorf("%s: pipeline %q: %w", file, fd.Name, e))
		}
		if len(errs) == 0 {
			defs = append(defs, d)
		}
	}
	return defs, errors.Join(problems...)
}

func build(fd fileDef, reg *steps.Registry) (*Definition, []error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	d := &Definition{Name: fd.Name, TimeZone: fd.TimeZone, Schedule: fd.Schedule, Params: fd.Params}
	if !nameRE.MatchString(fd.Name) {
		bad("name %q must match %s", fd.Name, nameRE)
	}
	if d.TimeZone == "" {
		d.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(d.TimeZone)
	if err != nil {
		bad("time_zone %q is not a known IANA time zone", fd.TimeZone)
	}
	d.Location = loc
	if fd.Schedule != "" {
		if _, err := ParseSchedule(fd.Schedule); err != nil {
			bad("schedule %q: %v", fd.Schedule, err)
		}
	}
	d.MaxRunDuration = DefaultMaxRunDuration
	if fd.MaxRunDuration != "" {
		v, err := time.ParseDuration(fd.MaxRunDuration)
		if err != nil || v <= 0 {
			bad("max_run_duration %q is not a positive duration like 6h", fd.MaxRunDuration)
		}
		d.MaxRunDuration = v
	}
	errs = append(errs, d.checkTiming(fd.Deadline, fd.StartWithin)...)
	if len(fd.Steps) == 0 {
		bad("no steps")
	}
	names := map[string]bool{}
	for i, fs := range fd.Steps {
		where := fmt.Sprintf("step %d (%q)", i+1, fs.Name)
		if !nameRE.MatchString(fs.Name) {
			bad("%s: name must match %s", where, nameRE)
		}
		if names[fs.Name] {
			bad("%s: duplicate step name", where)
		}
		names[fs.Name] = true
		sd := &StepDef{Name: fs.Name, Kind: fs.Kind, Params: fs.Params, Timeout: DefaultTimeout, MaxAttempts: DefaultMaxAttempts}
		switch {
		case fs.After != nil:
			sd.After = *fs.After
		case i > 0:
			sd.After = []string{fd.Steps[i-1].Name}
		}
		if fs.Timeout != "" {
			v, err := time.ParseDuration(fs.Timeout)
			if err != nil || v <= 0 {
				bad("%s: timeout %q is not a positive duration like 90s", where, fs.Timeout)
			}
			sd.Timeout = v
		}
		if fs.MaxAttempts != nil {
			if *fs.MaxAttempts < 1 || *fs.MaxAttempts > 100 {
				bad("%s: max_attempts %d must be between 1 and 100", where, *fs.MaxAttempts)
			}
			sd.MaxAttempts = *fs.MaxAttempts
		}
		for k, v := range fs.Rest {
			if k != fs.Kind {
				bad("%s: unknown key %q", where, k)
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				bad("%s: %s settings must be a mapping", where, k)
				continue
			}
			sd.Settings = m
		}
		switch {
		case fs.Kind == "":
			bad("%s: kind is required", where)
		case !reg.Known(fs.Kind):
			bad("%s: unknown kind %q (known: %s)", where, fs.Kind, strings.Join(reg.Kinds(), ", "))
		default:
			body, err := reg.Build(fs.Kind, sd.Settings)
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() { // every settings problem on its own line
					bad("%s: %v", where, e)
				}
			} else if err != nil {
				bad("%s: %v", where, err)
			}
			sd.Body = body
		}
		d.Steps = append(d.Steps, sd)
	}
	for _, s := range d.Steps {
		seenAfter := map[string]bool{}
		for _, a := range s.After {
			switch {
			case !names[a]:
				bad("step %q: after names unknown step %q", s.Name, a)
			case a == s.Name:
				bad("step %q: is after itself", s.Name)
			case seenAfter[a]:
				bad("step %q: after lists %q twice", s.Name, a)
			}
			seenAfter[a] = true
		}
	}
	if len(errs) == 0 {
		d.index()
		if cyc := findCycle(d); cyc != nil {
			bad("steps form a cycle: %s", strings.Join(cyc, " -> "))
		}
	}
	return d, errs
}

// findCycle returns one cycle in the step graph, or nil.
func findCycle(d *Definition) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range d.successors[n] {
			switch color[m] {
			case grey:
				for i, x := range stack {
					if x == m {
						found = append(append([]string{}, stack[i:]...), m)
					}
				}
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, s := range d.Steps {
		if color[s.Name] == white && visit(s.Name) {
			return found
		}
	}
	return nil
}
