package pipeline

import (
	"maps"
	"slices"
)

// Clone is a deep copy of g (nil for nil): its steps, their After, Params and
// Settings (JSON values: maps, slices and scalars; values of other types are
// shared) and its indexes. The time zone, loaded once, is shared. A ledger
// that keeps decoded graphs hands out clones, so that a caller that changes
// the graph it got, despite Graph's contract, changes only its own.
func (g *Graph) Clone() *Graph {
	if g == nil {
		return nil
	}
	c := *g
	if g.Steps != nil {
		c.Steps = make([]GraphStep, len(g.Steps))
		for i, s := range g.Steps {
			s.After = slices.Clone(s.After)
			s.Params = maps.Clone(s.Params)
			if s.Settings != nil {
				s.Settings = cloneJSONValue(s.Settings).(map[string]any)
			}
			c.Steps[i] = s
		}
	}
	c.byName = maps.Clone(g.byName)
	if g.successors != nil {
		c.successors = make(map[string][]string, len(g.successors))
		for k, v := range g.successors {
			c.successors[k] = slices.Clone(v)
		}
	}
	return &c
}

// cloneJSONValue is a deep copy of v, a value as encoding/json decodes into
// any (maps and slices are copied; anything else is returned as is).
func cloneJSONValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return v
		}
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = cloneJSONValue(e)
		}
		return c
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneJSONValue(e)
		}
		return c
	default:
		return v
	}
}
