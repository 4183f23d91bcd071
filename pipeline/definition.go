package pipeline

import (
	"time"

	"github.com/robfig/cron/v3"

	"github.com/pipelinehq/pipeline/steps"
)

// Defaults applied to steps that do not say otherwise.
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultMaxAttempts = 3
	// DefaultMaxRunDuration bounds a run before the sweeper fails it.
	DefaultMaxRunDuration = 24 * time.Hour
)

// Definition is one pipeline: a DAG of steps with a schedule.
type Definition struct {
	Name           string
	TimeZone       string
	Location       *time.Location
	Schedule       string // cron, five fields; empty means not scheduled
	MaxRunDuration time.Duration
	// Deadline is when a run must be finished (nil: no deadline).
	Deadline *Deadline
	// StartWithin is how long after a scheduled fire time its run must exist
	// (DefaultStartWithin for scheduled pipelines; zero when not scheduled).
	StartWithin  time.Duration
	Params       map[string]string
	Steps        []*StepDef
	byName       map[string]*StepDef
	successors   map[string][]string
	cron         cron.Schedule // the parsed Schedule, or nil
	line, column int           // where the name is written in its file
	graph        *Graph
	graphErr     error
}

// StepDef is one step of a Definition.
type StepDef struct {
	Name        string
	Kind        string
	After       []string
	Timeout     time.Duration
	MaxAttempts int
	Params      map[string]string
	Settings    map[string]any
	// Body is the configured step, built from Kind and Settings.
	Body steps.Step
}

// Step returns the named step, or nil.
func (d *Definition) Step(name string) *StepDef { return d.byName[name] }

// Successors lists the steps that name step in their After, in file order.
func (d *Definition) Successors(step string) []string { return d.successors[step] }

// Roots lists the steps with no predecessors, in file order.
func (d *Definition) Roots() []string {
	var out []string
	for _, s := range d.Steps {
		if len(s.After) == 0 {
			out = append(out, s.Name)
		}
	}
	return out
}

// StepNames lists every step in file order.
func (d *Definition) StepNames() []string {
	out := make([]string, len(d.Steps))
	for i, s := range d.Steps {
		out[i] = s.Name
	}
	return out
}

// Graph is the definition's step graph, as a run created from it records it.
func (d *Definition) Graph() *Graph { return d.graph }

// index fills the lookup tables and the graph; call after Steps are final.
func (d *Definition) index() {
	defer func() { d.graph, d.graphErr = graphOf(d) }()
	d.byName = make(map[string]*StepDef, len(d.Steps))
	d.successors = make(map[string][]string, len(d.Steps))
	for _, s := range d.Steps {
		d.byName[s.Name] = s
	}
	for _, s := range d.Steps {
		for _, a := range s.After {
			d.successors[a] = append(d.successors[a], s.Name)
		}
	}
}

// Catalog holds the loaded pipelines by name.
type Catalog struct {
	byName map[string]*Definition
	order  []*Definition
}

// NewCatalog indexes defs; names must be unique (Load checks).
func NewCatalog(defs ...*Definition) *Catalog {
	c := &Catalog{byName: map[string]*Definition{}}
	for _, d := range defs {
		if d.graph == nil && d.graphErr == nil {
			d.index()
		}
		c.byName[d.Name] = d
		c.order = append(c.order, d)
	}
	return c
}

// Get returns the named pipeline, or nil.
func (c *Catalog) Get(name string) *Definition { return c.byName[name] }

// All lists the pipelines in load order.
func (c *Catalog) All() []*Definition { return c.order }
