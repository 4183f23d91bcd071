package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Graph is the part of a definition that drives a run: its steps, their
// order, kinds, settings, timeouts and attempt limits. It is recorded in the
// run when the run is created, so that a deploy of a new definition while the
// run is in flight does not change the run: gate, successors, finish, the
// sweeper and re-runs all follow the run's own graph. Version is a hash of
// the rest: two runs with the same Version were created from the same
// definition.
//
// A Graph is immutable once built (NewGraph, or decoded from JSON); it is
// shared between goroutines.
type Graph struct {
	Version        string        `json:"version"`
	TimeZone       string        `json:"time_zone"`
	MaxRunDuration time.Duration `json:"max_run_duration"`
	Steps          []GraphStep   `json:"steps"`

	location   *time.Location
	byName     map[string]int
	successors map[string][]string
}

// GraphStep is one step of a Graph.
type GraphStep struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	After       []string          `json:"after,omitempty"`
	Timeout     time.Duration     `json:"timeout"`
	MaxAttempts int               `json:"max_attempts"`
	Params      map[string]string `json:"params,omitempty"`
	Settings    map[string]any    `json:"settings,omitempty"`
}

// graphOf is the graph of a definition, with its version.
func graphOf(d *Definition) (*Graph, error) {
	g := &Graph{TimeZone: d.TimeZone, MaxRunDuration: d.MaxRunDuration, Steps: make([]GraphStep, len(d.Steps))}
	if g.TimeZone == "" {
		g.TimeZone = "UTC"
	}
	for i, s := range d.Steps {
		g.Steps[i] = GraphStep{Name: s.Name, Kind: s.Kind, After: s.After, Timeout: s.Timeout,
			MaxAttempts: s.MaxAttempts, Params: s.Params, Settings: s.Settings}
	}
	// The version hashes the JSON form (map keys sorted), which is also the
	// stored form: a graph read back from the ledger hashes the same.
	b, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: settings are not representable as JSON: %w", d.Name, err)
	}
	var back Graph
	if err := json.Unmarshal(b, &back); err != nil {
		return nil, fmt.Errorf("pipeline %s: graph: %w", d.Name, err)
	}
	back.Version = ""
	if b, err = json.Marshal(&back); err != nil {
		return nil, fmt.Errorf("pipeline %s: graph: %w", d.Name, err)
	}
	sum := sha256.Sum256(b)
	back.Version = hex.EncodeToString(sum[:6])
	if err := back.index(); err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", d.Name, err)
	}
	return &back, nil
}

// UnmarshalJSON decodes a graph (as a ledger stores it) and indexes it.
func (g *Graph) UnmarshalJSON(b []byte) error {
	type plain Graph
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*g = Graph(p)
	return g.index()
}

func (g *Graph) index() error {
	loc, err := time.LoadLocation(g.TimeZone)
	if err != nil {
		return fmt.Errorf("graph %s: time zone %q: %w", g.Version, g.TimeZone, err)
	}
	g.location = loc
	g.byName = make(map[string]int, len(g.Steps))
	g.successors = make(map[string][]string, len(g.Steps))
	for i, s := range g.Steps {
		g.byName[s.Name] = i
	}
	for _, s := range g.Steps {
		for _, a := range s.After {
			g.successors[a] = append(g.successors[a], s.Name)
		}
	}
	return nil
}

// Step returns the named step, or nil.
func (g *Graph) Step(name string) *GraphStep {
	i, ok := g.byName[name]
	if !ok {
		return nil
	}
	return &g.Steps[i]
}

// Successors lists the steps that name step in their After, in file order.
func (g *Graph) Successors(step string) []string { return g.successors[step] }

// Roots lists the steps with no predecessors, in file order.
func (g *Graph) Roots() []string {
	var out []string
	for _, s := range g.Steps {
		if len(s.After) == 0 {
			out = append(out, s.Name)
		}
	}
	return out
}

// StepNames lists every step in file order.
func (g *Graph) StepNames() []string {
	out := make([]string, len(g.Steps))
	for i, s := range g.Steps {
		out[i] = s.Name
	}
	return out
}

// Location is the graph's time zone.
func (g *Graph) Location() *time.Location { return g.location }

// sameBody reports whether a and b build the same step body (same kind and
// settings).
func sameBody(a GraphStep, b GraphStep) bool {
	if a.Kind != b.Kind {
		return false
	}
	ja, err1 := json.Marshal(a.Settings)
	jb, err2 := json.Marshal(b.Settings)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
