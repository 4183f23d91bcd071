package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/pipelinehq/pipeline/steps"
)

// runGraph is a run's graph with the step bodies this binary runs it with.
type runGraph struct {
	*Graph
	pipeline string
	bodies   map[string]steps.Step
	// missing explains, per step, why this binary cannot run its body.
	missing map[string]string
}

// body is the step body of a step, or an error naming why this binary has
// none (its kind is no longer registered, or its settings no longer build).
func (g *runGraph) body(step string) (steps.Step, error) {
	if why, ok := g.missing[step]; ok {
		return nil, steps.Permanent(fmt.Errorf("%s", why))
	}
	return g.bodies[step], nil
}

// graphCache holds the run graphs an orchestrator built, by pipeline and
// version: a run's tasks name its version, so a transition finds the run's
// graph without reading the run.
type graphCache struct {
	mu     sync.Mutex
	graphs map[string]*runGraph
}

// maxCachedGraphs bounds the cache; runs of old versions are few (they were
// in flight at a deploy), and a miss only costs a read of the run.
const maxCachedGraphs = 64

func (c *graphCache) get(key string) *runGraph {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.graphs[key]
}

func (c *graphCache) put(key string, g *runGraph) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.graphs == nil || len(c.graphs) >= maxCachedGraphs {
		c.graphs = map[string]*runGraph{}
	}
	c.graphs[key] = g
}

// runGraphOf returns the run graph of g, a graph of pipeline pipe, building
// its bodies once: a step whose kind and settings are the loaded
// definition's uses the loaded body; others are built from the registry.
func (o *Orchestrator) runGraphOf(pipe string, g *Graph) *runGraph {
	key := pipe + "\x00" + g.Version
	if rg := o.graphs.get(key); rg != nil {
		return rg
	}
	rg := &runGraph{Graph: g, pipeline: pipe, bodies: map[string]steps.Step{}, missing: map[string]string{}}
	def := o.catalog.Get(pipe)
	for _, s := range g.Steps {
		if def != nil {
			if cur := def.Step(s.Name); cur != nil && cur.Body != nil {
				if gs := def.Graph().Step(s.Name); gs != nil && sameBody(*gs, s) {
					rg.bodies[s.Name] = cur.Body
					continue
				}
			}
		}
		switch {
		case o.registry == nil:
			rg.missing[s.Name] = fmt.Sprintf("step %s: kind %q of the run's definition (version %s) has no body in this binary: the step changed since the run started, and no step registry is configured to build it", s.Name, s.Kind, g.Version)
		case !o.registry.Known(s.Kind):
			rg.missing[s.Name] = fmt.Sprintf("step %s: kind %q of the run's definition (version %s) is not registered in this binary (registered: %s)", s.Name, s.Kind, g.Version, strings.Join(o.registry.Kinds(), ", "))
		default:
			b, err := o.registry.Build(s.Kind, s.Settings)
			if err != nil {
				rg.missing[s.Name] = fmt.Sprintf("step %s: kind %q of the run's definition (version %s) does not build in this binary: %v", s.Name, s.Kind, g.Version, err)
				continue
			}
			rg.bodies[s.Name] = b
		}
	}
	o.graphs.put(key, rg)
	return rg
}

// currentGraph is the run graph of the loaded definition of a pipeline.
func (o *Orchestrator) currentGraph(def *Definition) *runGraph {
	return o.runGraphOf(def.Name, def.Graph())
}

// graphForRun is the graph that drives r: its own, or for a run recorded
// before runs kept their graph, the loaded definition's.
func (o *Orchestrator) graphForRun(r Run) (*runGraph, error) {
	pipe, _, err := SplitRunID(r.ID)
	if err != nil {
		return nil, err
	}
	if r.Graph != nil {
		return o.runGraphOf(pipe, r.Graph), nil
	}
	def := o.catalog.Get(pipe)
	if def == nil {
		return nil, fmt.Errorf("%w: pipeline %q of run %s is not loaded, and the run has no recorded definition", ErrNotFound, pipe, r.ID)
	}
	return o.currentGraph(def), nil
}

// graphForTask finds the graph of the run a task belongs to: from the cache
// by the version the task names (no read on a transition), or by reading the
// run. Tasks enqueued before runs kept their graph name no version: the
// loaded definition drives them.
func (o *Orchestrator) graphForTask(ctx context.Context, pipe string, p TaskPayload) (*runGraph, error) {
	def := o.catalog.Get(pipe)
	if p.DefinitionVersion == "" || (def != nil && def.Graph().Version == p.DefinitionVersion) {
		if def == nil {
			return nil, fmt.Errorf("%w: pipeline %q of run %s is not loaded", ErrNotFound, pipe, p.RunID)
		}
		return o.currentGraph(def), nil
	}
	if rg := o.graphs.get(pipe + "\x00" + p.DefinitionVersion); rg != nil {
		return rg, nil
	}
	r, err := o.ledger.GetRun(ctx, p.RunID)
	if err != nil {
		return nil, fmt.Errorf("definition of %s: %w", p.RunID, err)
	}
	return o.graphForRun(r)
}
