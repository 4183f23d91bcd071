package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file turns one YAML document (a yaml.Node tree) into a fileDef,
// keeping the node of every value so that each problem names its line and
// column. Unknown keys, wrong shapes and duplicate keys are reported here;
// meaning (durations, names, the graph) is checked by build.

var (
	defKeys  = []string{"name", "time_zone", "schedule", "max_run_duration", "deadline", "start_within", "params", "steps"}
	stepKeys = []string{"name", "kind", "after", "timeout", "max_attempts", "params"}
)

// fileDef is the YAML shape of a pipeline, with the nodes it came from.
type fileDef struct {
	Name           string
	TimeZone       string
	Schedule       string
	MaxRunDuration string
	Deadline       string
	StartWithin    string
	Params         map[string]string
	Steps          []fileStep
	node           *yaml.Node            // the document's mapping
	at             map[string]*yaml.Node // value node of each key given
}

// fileStep is the YAML shape of a step; kind settings are the remaining keys.
type fileStep struct {
	Name        string
	Kind        string
	After       *[]string
	Timeout     string
	MaxAttempts *int
	Params      map[string]string
	Rest        map[string]*yaml.Node // other keys (the kind's settings, or typos)
	node        *yaml.Node            // the step's mapping
	at          map[string]*yaml.Node // value node of each key given
	keyAt       map[string]*yaml.Node // key node of each key given
	afterAt     []*yaml.Node          // one node per After entry
}

// sink collects problems of one file.
type sink struct {
	file     string
	problems []error
}

// add records a problem at n (n may be nil: then the problem has no place).
func (s *sink) add(n *yaml.Node, format string, args ...any) {
	p := &Problem{File: s.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	s.problems = append(s.problems, p)
}

// pair is one key and its value in a mapping.
type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys (<<) resolved: keys
// written in the mapping win over merged ones. Duplicate keys are reported.
func pairs(s *sink, where string, m *yaml.Node) []pair {
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if k.Tag == "!!merge" {
			for _, src := range mergeSources(v) {
				merged = append(merged, pairs(s, where, src)...)
			}
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			s.add(k, "%skey %q given twice (first at line %d)", where, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			own = append(own, p)
		}
	}
	return own
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			if c = resolve(c); c.Kind == yaml.MappingNode {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

// resolve follows an alias to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// shape names what a node is, for messages.
func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "empty"
}

// text reads a scalar into out; null leaves out empty.
func text(s *sink, where, key string, n *yaml.Node, out *string) {
	switch {
	case isNull(n):
	case n.Kind == yaml.ScalarNode:
		*out = n.Value
	default:
		s.add(n, "%s%s must be a single value, not %s", where, key, shape(n))
	}
}

// textMap reads a mapping of names to single values into out.
func textMap(s *sink, where, key string, n *yaml.Node, out *map[string]string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		s.add(n, "%s%s must be a mapping of names to values, like {rows: \"10\"}, not %s", where, key, shape(n))
		return
	}
	m := map[string]string{}
	for _, p := range pairs(s, where+key+": ", n) {
		if p.val.Kind != yaml.ScalarNode {
			s.add(p.val, "%s%s: %q must be a single value, not %s", where, key, p.key.Value, shape(p.val))
			continue
		}
		m[p.key.Value] = p.val.Value
		if isNull(p.val) {
			m[p.key.Value] = ""
		}
	}
	*out = m
}

// decodeDef reads one document into a fileDef, reporting shape problems.
func decodeDef(s *sink, doc *yaml.Node) fileDef {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	root = resolve(root)
	fd := fileDef{node: root, at: map[string]*yaml.Node{}}
	if root.Kind != yaml.MappingNode {
		s.add(root, "a pipeline must be a mapping (name, schedule, steps, ...), not %s", shape(root))
		return fd
	}
	ps := pairs(s, "", root)
	for _, p := range ps { // the name first, so that every other message can carry it
		if p.key.Value == "name" {
			text(s, "", "name", p.val, &fd.Name)
		}
	}
	where := fmt.Sprintf("pipeline %q: ", fd.Name)
	for _, p := range ps {
		k, v := p.key.Value, p.val
		fd.at[k] = v
		switch k {
		case "name":
		case "time_zone":
			text(s, where, k, v, &fd.TimeZone)
		case "schedule":
			text(s, where, k, v, &fd.Schedule)
		case "max_run_duration":
			text(s, where, k, v, &fd.MaxRunDuration)
		case "deadline":
			text(s, where, k, v, &fd.Deadline)
		case "start_within":
			text(s, where, k, v, &fd.StartWithin)
		case "params":
			textMap(s, where, k, v, &fd.Params)
		case "steps":
			fd.Steps = decodeSteps(s, where, v)
		default:
			delete(fd.at, k)
			s.add(p.key, "%sunknown key %q%s (known: %s)", where, k, didYouMean(k, defKeys), strings.Join(defKeys, ", "))
		}
	}
	return fd
}

func decodeSteps(s *sink, where string, n *yaml.Node) []fileStep {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		s.add(n, "%ssteps must be a list of steps (- name: ..., kind: ...), not %s", where, shape(n))
		return nil
	}
	var out []fileStep
	for i, c := range n.Content {
		out = append(out, decodeStep(s, where, i, resolve(c)))
	}
	return out
}

func decodeStep(s *sink, pwhere string, i int, n *yaml.Node) fileStep {
	fs := fileStep{node: n, at: map[string]*yaml.Node{}, keyAt: map[string]*yaml.Node{}, Rest: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		s.add(n, "%sstep %d must be a mapping (name, kind, ...), not %s", pwhere, i+1, shape(n))
		return fs
	}
	ps := pairs(s, pwhere, n)
	for _, p := range ps {
		if p.key.Value == "name" {
			text(s, fmt.Sprintf("%sstep %d: ", pwhere, i+1), "name", p.val, &fs.Name)
		}
	}
	where := fmt.Sprintf("%sstep %d (%q): ", pwhere, i+1, fs.Name)
	for _, p := range ps {
		k, v := p.key.Value, p.val
		fs.at[k], fs.keyAt[k] = v, p.key
		switch k {
		case "name":
		case "kind":
			text(s, where, k, v, &fs.Kind)
		case "timeout":
			text(s, where, k, v, &fs.Timeout)
		case "params":
			textMap(s, where, k, v, &fs.Params)
		case "max_attempts":
			if isNull(v) {
				break
			}
			var m int
			if v.Kind != yaml.ScalarNode || v.Decode(&m) != nil {
				s.add(v, "%smax_attempts must be a whole number, not %s", where, shape(v))
				break
			}
			fs.MaxAttempts = &m
		case "after":
			fs.After, fs.afterAt = decodeAfter(s, where, v)
		default:
			fs.Rest[k] = v
		}
	}
	return fs
}

// decodeAfter reads an after list; null means "not given" (the default).
func decodeAfter(s *sink, where string, v *yaml.Node) (*[]string, []*yaml.Node) {
	if isNull(v) {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		s.add(v, "%safter must be a list of step names, like [extract], not %s", where, shape(v))
		return nil, nil
	}
	names := []string{}
	var at []*yaml.Node
	for _, c := range v.Content {
		c = resolve(c)
		if c.Kind != yaml.ScalarNode || isNull(c) {
			s.add(c, "%safter: each entry must be a step name, not %s", where, shape(c))
			continue
		}
		names = append(names, c.Value)
		at = append(at, c)
	}
	return &names, at
}

// sortedKeys lists a set's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
