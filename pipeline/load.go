package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	goyaml "github.com/goccy/go-yaml"
	goparser "github.com/goccy/go-yaml/parser"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/pipelinehq/pipeline/steps"
)

// CronParser parses the five-field schedules that Cloud Scheduler accepts.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a five-field cron schedule.
func ParseSchedule(s string) (cron.Schedule, error) { return cronParser.Parse(s) }

// LoadFiles reads pipeline files (a path may be a directory of *.yaml/*.yml)
// and returns the catalog, or an error listing every problem found (each a
// *Problem where it has a place in a file). With the error comes a catalog of
// the pipelines that did load, or nil when none did: a service must not start
// with it, but a diagnosis (the doctor) can go on with it.
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
					problems = append(problems, &Problem{File: f, Line: d.line, Column: d.column,
						Msg: fmt.Sprintf("pipeline %q is also defined at %s", d.Name, prev)})
					continue
				}
				seen[d.Name] = fmt.Sprintf("%s:%d:%d", f, d.line, d.column)
				defs = append(defs, d)
			}
		}
	}
	if len(problems) > 0 {
		if len(defs) == 0 {
			return nil, errors.Join(problems...)
		}
		return NewCatalog(defs...), errors.Join(problems...)
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
// and validates them. The error lists every problem (each a *Problem naming
// file:line:column, the pipeline and the step); valid definitions are
// returned even when others fail.
func Parse(file string, data []byte, reg *steps.Registry) ([]*Definition, error) {
	s := &sink{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var defs []*Definition
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.problems = append(s.problems, syntaxProblem(file, data, err))
			break
		}
		if emptyDocument(&doc) { // a stray "---", or a document of comments
			continue
		}
		before := len(s.problems)
		fd := decodeDef(s, &doc)
		d := build(s, fd, reg)
		if len(s.problems) == before && fd.node.Kind == yaml.MappingNode {
			defs = append(defs, d)
		}
	}
	sortProblems(s.problems)
	return defs, errors.Join(s.problems...)
}

func emptyDocument(doc *yaml.Node) bool {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return true
		}
		doc = doc.Content[0]
	}
	return doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" && doc.Value == ""
}

// sortProblems orders a file's problems by their place (stable: problems
// without a place keep their order, after those with one).
func sortProblems(ps []error) {
	key := func(e error) (int, int) {
		var p *Problem
		if !errors.As(e, &p) || p.Line == 0 {
			return math.MaxInt, 0
		}
		return p.Line, p.Column
	}
	sort.SliceStable(ps, func(i, j int) bool {
		li, ci := key(ps[i])
		lj, cj := key(ps[j])
		return li < lj || li == lj && ci < cj
	})
}

// syntaxProblem places a YAML syntax error. yaml.v3 reports the line where
// the enclosing block began, not where the mistake is; goccy/go-yaml's
// parser points at the offending token, so the file is parsed again with it
// to find the place. Should it see no error, yaml.v3's message stands.
func syntaxProblem(file string, data []byte, err error) error {
	p := &Problem{File: file, Msg: "YAML syntax: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(p.Msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = "YAML syntax: " + strings.TrimPrefix(p.Msg, "YAML syntax: "+m[0])
	}
	var se *goyaml.SyntaxError
	_, perr := goparser.ParseBytes(data, 0)
	// yaml.v3's line is at or before the real one (it may count from 0), so a
	// place further up belongs to a disagreement between the parsers: keep
	// yaml.v3's own message then.
	if errors.As(perr, &se) && se.Token != nil && se.Token.Position != nil && se.Token.Position.Line >= p.Line-1 {
		p.Line, p.Column, p.Msg = se.Token.Position.Line, se.Token.Position.Column, "YAML syntax: "+se.Message
	}
	return p
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): `)

func build(s *sink, fd fileDef, reg *steps.Registry) *Definition {
	where := fmt.Sprintf("pipeline %q: ", fd.Name)
	problemsBefore := len(s.problems)
	bad := func(n *yaml.Node, format string, args ...any) {
		if n == nil {
			n = fd.node
		}
		s.add(n, where+format, args...)
	}
	d := &Definition{Name: fd.Name, TimeZone: fd.TimeZone, Schedule: fd.Schedule, Params: fd.Params}
	if fd.node.Kind != yaml.MappingNode {
		return d
	}
	if n := fd.at["name"]; n != nil {
		d.line, d.column = n.Line, n.Column
	}
	if fd.at["name"] == nil {
		bad(nil, "name is required (it names the pipeline's runs, like daily)")
	} else if !validName(fd.Name) {
		bad(fd.at["name"], "name %q must match %s", fd.Name, namePattern)
	}
	if d.TimeZone == "" {
		d.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(d.TimeZone)
	if err != nil {
		bad(fd.at["time_zone"], "time_zone %q is not a known IANA time zone (like Europe/Paris)", fd.TimeZone)
	}
	d.Location = loc
	if fd.Schedule != "" {
		if _, err := ParseSchedule(fd.Schedule); err != nil {
			bad(fd.at["schedule"], "schedule %q: %v", fd.Schedule, err)
		}
	}
	d.MaxRunDuration = DefaultMaxRunDuration
	if fd.MaxRunDuration != "" {
		v, err := time.ParseDuration(fd.MaxRunDuration)
		if err != nil || v <= 0 {
			bad(fd.at["max_run_duration"], "max_run_duration %q is not a positive duration like 6h", fd.MaxRunDuration)
		}
		d.MaxRunDuration = v
	}
	d.checkTiming(fd.Deadline, fd.StartWithin, func(key, format string, args ...any) { bad(fd.at[key], format, args...) })
	if len(fd.Steps) == 0 {
		bad(fd.at["steps"], "no steps")
	}
	names := map[string]bool{}
	var stepNames []string
	type placedStep struct {
		sd  *StepDef
		fs  fileStep
		idx int
	}
	var placed []placedStep
	for i, fs := range fd.Steps {
		sw := fmt.Sprintf("step %d (%q): ", i+1, fs.Name)
		if fs.Name == "" {
			sw = fmt.Sprintf("step %d: ", i+1)
		}
		if fs.node.Kind != yaml.MappingNode {
			continue // decodeStep reported it
		}
		switch {
		case fs.at["name"] == nil:
			bad(fs.node, "%sname is required", sw)
		case !validName(fs.Name):
			bad(fs.at["name"], "%sname must match %s", sw, namePattern)
		case names[fs.Name]:
			bad(fs.at["name"], "%sduplicate step name", sw)
		}
		if !names[fs.Name] {
			stepNames = append(stepNames, fs.Name)
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
				bad(fs.at["timeout"], "%stimeout %q is not a positive duration like 90s", sw, fs.Timeout)
			}
			sd.Timeout = v
		}
		if fs.MaxAttempts != nil {
			if *fs.MaxAttempts < 1 || *fs.MaxAttempts > 100 {
				bad(fs.at["max_attempts"], "%smax_attempts %d must be between 1 and 100", sw, *fs.MaxAttempts)
			}
			sd.MaxAttempts = *fs.MaxAttempts
		}
		settingsAt := fs.node
		for _, k := range sortedKeys(fs.Rest) {
			v := fs.Rest[k]
			if k != fs.Kind {
				known := append([]string{}, stepKeys...)
				if reg.Known(fs.Kind) {
					known = append(known, fs.Kind) // the kind's settings
				}
				hint := didYouMean(k, known)
				if hint == "" && fs.Kind != "" && reg.Known(k) {
					hint = fmt.Sprintf(" (settings for kind %q, but this step's kind is %q)", k, fs.Kind)
				}
				bad(fs.keyAt[k], "%sunknown key %q%s (known: %s)", sw, k, hint, strings.Join(known, ", "))
				continue
			}
			var m map[string]any
			if v.Kind != yaml.MappingNode || v.Decode(&m) != nil {
				bad(v, "%s%s settings must be a mapping, not %s", sw, k, shape(v))
				continue
			}
			sd.Settings, settingsAt = m, v
		}
		switch {
		case fs.at["kind"] == nil || fs.Kind == "":
			bad(fs.node, "%skind is required (known: %s)", sw, strings.Join(reg.Kinds(), ", "))
		case !reg.Known(fs.Kind):
			bad(fs.at["kind"], "%sunknown kind %q%s (known: %s)", sw, fs.Kind, didYouMean(fs.Kind, reg.Kinds()), strings.Join(reg.Kinds(), ", "))
		default:
			body, err := reg.Build(fs.Kind, sd.Settings)
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() { // every settings problem on its own line
					bad(settingsAt, "%s%v", sw, e)
				}
			} else if err != nil {
				bad(settingsAt, "%s%v", sw, err)
			}
			sd.Body = body
			if _, async := body.(steps.AsyncStep); async && sd.Timeout > MaxAsyncTimeout {
				bad(fs.at["timeout"], "%stimeout %s is above the %s an asynchronous step may wait", sw, sd.Timeout, MaxAsyncTimeout)
			} else if async && sd.Timeout > d.MaxRunDuration {
				bad(fs.at["timeout"], "%stimeout %s is above the pipeline's max_run_duration %s: the run would fail, stopping the wait, before the step times out; "+
					"raise max_run_duration or lower the timeout", sw, sd.Timeout, d.MaxRunDuration)
			}
		}
		d.Steps = append(d.Steps, sd)
		placed = append(placed, placedStep{sd, fs, i})
	}
	edges := map[string][]string{}
	edgeAt := map[[2]string]*yaml.Node{} // the after entry (or step, when implicit) that makes each edge
	for _, st := range placed {
		sw := fmt.Sprintf("step %d (%q): ", st.idx+1, st.sd.Name)
		seenAfter := map[string]bool{}
		for j, a := range st.sd.After {
			n := st.fs.node // an implicit after (the previous step) has no entry of its own
			if st.fs.After != nil {
				n = st.fs.afterAt[j]
			}
			switch {
			case !names[a]:
				bad(n, "%safter names unknown step %q%s", sw, a, didYouMean(a, stepNames))
			case a == st.sd.Name:
				if st.fs.After != nil { // implicitly after a step of the same name: reported as a duplicate
					bad(n, "%sis after itself", sw)
				}
			case seenAfter[a]:
				bad(n, "%safter lists %q twice", sw, a)
			default:
				e := [2]string{a, st.sd.Name}
				if edgeAt[e] == nil {
					edges[a] = append(edges[a], st.sd.Name)
					edgeAt[e] = n
				}
			}
			seenAfter[a] = true
		}
	}
	// The cycle check runs even when other problems were found (duplicate
	// names included: a name stands for every step that carries it).
	if cyc := findCycle(stepNames, edges); cyc != nil {
		bad(edgeAt[[2]string{cyc[0], cyc[1]}], "steps form a cycle: %s", strings.Join(cyc, " -> "))
	}
	d.index()
	if d.graphErr != nil && len(s.problems) == problemsBefore {
		// Only worth saying when nothing else is wrong: a graph with
		// duplicate names or a cycle has no recordable form either.
		bad(nil, "%v", d.graphErr)
	}
	return d
}

// findCycle returns one cycle in the graph (nodes in order, edges from a
// step to its successors) as a path that ends where it starts, or nil.
func findCycle(nodes []string, edges map[string][]string) []string {
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
		for _, m := range edges[n] {
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
	for _, n := range nodes {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}
