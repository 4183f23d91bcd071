package boltledger

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Bounds of a ledger's decode caches (see recordCache). A step record is
// about 0.5-2 KB stored and as much decoded, a run record about as much plus
// its graph: the bounds keep the caches to a few MB, and hold the steps and
// runs in flight with a few hundred runs running at once.
const (
	maxDecodedSteps  = 2048
	maxDecodedRuns   = 256
	maxDecodedGraphs = 64
)

// decoded holds a ledger's decode caches, one per bucket: steps by step key,
// runs by run ID; and the graphs of runs by definition version, since the
// runs of a definition store the same graph (a run's first read after
// CreateRun decodes its record but not its graph). Records are handed out as
// copies of the caller's own, except to a read that only looks and says so
// (stepRead, shared); graphs, immutable (pipeline.Graph's contract), as they
// are held, shared by every reader of the runs of one definition.
type decoded struct {
	steps  recordCache[stepRecord]
	runs   recordCache[decodedRun]
	graphs recordCache[*pipeline.Graph]
}

// decodedRun is a run record with its graph decoded (nil without one).
type decodedRun struct {
	rec   runRecord
	graph *pipeline.Graph
}

func newDecoded() *decoded {
	d := &decoded{}
	d.steps.max, d.runs.max, d.graphs.max = maxDecodedSteps, maxDecodedRuns, maxDecodedGraphs
	return d
}

// step decodes v, the value stored at key in the steps bucket (maybe a
// transaction's memory), into a record of the caller's own.
func (d *decoded) step(key, v []byte) (stepRecord, int64, error) {
	return d.stepRead(key, v, false)
}

// stepRead is step; shared, it returns a record found in the cache as the
// cache holds it, without the copy. That is for a read that only looks, in
// the shared commit's single writer (TransitionFinish's decision): the
// caller must not change the record, nor hand it out before making it its
// own (ownSteps).
func (d *decoded) stepRead(key, v []byte, shared bool) (stepRecord, int64, error) {
	version, err := versionOf(v)
	if err != nil {
		return stepRecord{}, 0, err
	}
	if rec, ok := d.steps.get(key, v); ok {
		if shared {
			return rec, version, nil
		}
		return rec.clone(), version, nil
	}
	var rec stepRecord
	if _, err := decode(v, &rec); err != nil {
		return stepRecord{}, 0, err
	}
	d.steps.put(string(key), bytes.Clone(v), rec.clone())
	return rec, version, nil
}

// run decodes v, the value stored at id in the runs bucket (maybe a
// transaction's memory), into a record of the caller's own and the run's
// (shared) graph.
func (d *decoded) run(id string, v []byte) (runRecord, *pipeline.Graph, int64, error) {
	version, err := versionOf(v)
	if err != nil {
		return runRecord{}, nil, 0, err
	}
	if r, ok := d.runs.get([]byte(id), v); ok {
		return r.rec.clone(), r.graph, version, nil
	}
	var rec runRecord
	if _, err := decode(v, &rec); err != nil {
		return runRecord{}, nil, 0, err
	}
	graph, err := d.graph(rec)
	if err != nil {
		return runRecord{}, nil, 0, err
	}
	d.runs.put(id, bytes.Clone(v), decodedRun{rec: rec.clone(), graph: graph})
	return rec, graph, version, nil
}

// graph decodes the graph of rec (nil without one), or finds it decoded.
func (d *decoded) graph(rec runRecord) (*pipeline.Graph, error) {
	if len(rec.Graph) == 0 {
		return nil, nil
	}
	if g, ok := d.graphs.get([]byte(rec.DefVersion), rec.Graph); ok {
		return g, nil
	}
	g, err := rec.graph()
	if err != nil {
		return nil, err
	}
	d.graphs.put(rec.DefVersion, bytes.Clone(rec.Graph), g)
	return g, nil
}

// graph decodes the run's graph (nil without one).
func (rec runRecord) graph() (*pipeline.Graph, error) {
	if len(rec.Graph) == 0 {
		return nil, nil
	}
	g := new(pipeline.Graph)
	if err := json.Unmarshal(rec.Graph, g); err != nil {
		return nil, fmt.Errorf("corrupt run: graph: %w", err)
	}
	return g, nil
}
