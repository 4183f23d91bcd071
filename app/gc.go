package app

import (
	"runtime/debug"
	"runtime/metrics"
)

// localGCPercent is the garbage collector's target (GOGC) that `serve` on the
// local backend runs with when GOGC is not set: the heap may grow to five
// times what is live between collections, instead of twice.
//
// A step's bookkeeping allocates ~40 KB that is garbage once it is answered,
// and the local service runs on the machine's own cores beside the step
// bodies, so collections were a tenth of its CPU at 50 chains in flight. The
// collector's work per byte allocated falls as the target rises; measured
// with BenchmarkLocalChainsConcurrency50 (docs/performance.md), 400 takes
// about 15 % off the CPU per step for about 50 MB more resident at that load.
// An idle service keeps what it had (its live heap is a few MB).
//
// The gcp backend keeps Go's default: a Cloud Run instance's memory limit is
// its operator's to size, and GOGC (or GOMEMLIMIT) is how they tune it.
const localGCPercent = 400

// gcPercentFor is the GC target serve sets on backend, if any: none when the
// user set GOGC (the runtime applied it at start) or off the local backend.
func gcPercentFor(backend string, gogcSet bool) (percent int, set bool) {
	if gogcSet || backend != "local" {
		return 0, false
	}
	return localGCPercent, true
}

// tuneGC sets the GC target gcPercentFor gives, if any, and returns the
// target in force, as the runtime reports it, and a function that puts back
// the target it replaced (for tests and benchmarks).
func tuneGC(backend string, gogcSet bool) (inForce int, restore func()) {
	restore = func() {}
	if p, ok := gcPercentFor(backend, gogcSet); ok {
		prev := debug.SetGCPercent(p)
		restore = func() { debug.SetGCPercent(prev) }
	}
	return gcPercentInForce(), restore
}

// gcPercentInForce is the runtime's current GC target (-1: off).
func gcPercentInForce() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	v := s[0].Value.Uint64()
	if v == ^uint64(0) || v > 1<<31 {
		return -1
	}
	return int(v)
}
