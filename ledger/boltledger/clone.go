package boltledger

import (
	"bytes"
	"maps"
	"slices"

	"github.com/pipelinehq/pipeline/pipeline"
)

// clone is a deep copy of rec: nothing it refers to is shared (nil and empty
// stay as they were, as decoding would make them).
func (rec stepRecord) clone() stepRecord {
	rec.Output = bytes.Clone(rec.Output)
	rec.AsyncState = bytes.Clone(rec.AsyncState)
	rec.Inputs = maps.Clone(rec.Inputs)
	rec.History = slices.Clone(rec.History)
	return rec
}

// clone is a deep copy of rec.
func (rec runRecord) clone() runRecord {
	rec.Params = maps.Clone(rec.Params)
	rec.Notes = maps.Clone(rec.Notes)
	rec.Steps = slices.Clone(rec.Steps)
	rec.Summary = slices.Clone(rec.Summary)
	rec.Graph = bytes.Clone(rec.Graph)
	return rec
}

// ownSteps makes steps the caller's own, in place: each refers to nothing
// another holds (a step read shared, see runTx).
func ownSteps(steps []pipeline.StepRun) {
	for i := range steps {
		s := &steps[i]
		s.Output = bytes.Clone(s.Output)
		s.AsyncState = bytes.Clone(s.AsyncState)
		s.Inputs = maps.Clone(s.Inputs)
		s.History = slices.Clone(s.History)
	}
}
