package steps

import (
	"fmt"
	"sort"
)

// Factory builds a Step from the kind-specific settings of one step (the map
// found under the kind's name in the pipeline file; nil when absent). It
// returns an error naming every problem with the settings.
type Factory func(settings map[string]any) (Step, error)

// Registry maps kind names to factories. The zero value is not usable: use
// NewRegistry.
type Registry struct {
	kinds map[string]Factory
}

// NewRegistry returns a registry holding the built-in kinds (http, noop, sleep).
func NewRegistry() *Registry {
	r := &Registry{kinds: map[string]Factory{}}
	r.Register("http", NewHTTP)
	r.Register("noop", NewNoop)
	r.Register("sleep", NewSleep)
	return r
}

// Register adds or replaces a kind.
func (r *Registry) Register(kind string, f Factory) { r.kinds[kind] = f }

// Known reports whether kind is registered.
func (r *Registry) Known(kind string) bool { _, ok := r.kinds[kind]; return ok }

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Build constructs the step of the given kind.
func (r *Registry) Build(kind string, settings map[string]any) (Step, error) {
	f, ok := r.kinds[kind]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q (known: %v)", kind, r.Kinds())
	}
	return f(settings)
}
