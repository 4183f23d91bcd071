package boltledger

import (
	"bytes"
	"time"
	"unicode/utf8"

	"github.com/pipelinehq/pipeline/pipeline"
)

// A write puts the record it encoded into the decode cache, so that the next
// read of that record (the delivery of a step a transition claimed, the next
// update of a run) needs no decode. That is coherent only if the record is
// exactly what decoding its encoding gives back, which encoding/json does not
// promise for every value: asDecoded makes the record so (the empty maps and
// slices that omitempty drops become nil) and says when it cannot (a time
// with a zone or a monotonic reading, a string that is not UTF-8, raw JSON
// that encoding rewrites). The record is then left to the read path.

// asDecoded is a deep copy of rec as decoding its encoding gives it back, and
// whether it is one (if not, it copies nothing).
func (rec stepRecord) asDecoded() (stepRecord, bool) {
	ok := asDecodedTimes(rec.LeaseUntil, rec.StartedAt, rec.FinishedAt, rec.UpdatedAt, rec.WaitingSince, rec.NextCheckAt) &&
		asDecodedStrings(rec.Status, rec.Error, rec.Link, rec.RunInput, rec.WriteID) &&
		asDecodedJSON(rec.Output) && asDecodedJSON(rec.AsyncState)
	for k := range rec.Inputs {
		ok = ok && utf8.ValidString(k)
	}
	for _, a := range rec.History {
		ok = ok && asDecodedAttempt(a)
	}
	if !ok {
		return stepRecord{}, false
	}
	rec = rec.clone()
	if len(rec.Output) == 0 {
		rec.Output = nil
	}
	if len(rec.AsyncState) == 0 {
		rec.AsyncState = nil
	}
	if len(rec.Inputs) == 0 {
		rec.Inputs = nil
	}
	if len(rec.History) == 0 {
		rec.History = nil
	}
	return rec, true
}

func asDecodedAttempt(a pipeline.Attempt) bool {
	return asDecodedTimes(a.StartedAt, a.WaitingSince, a.FinishedAt) && asDecodedStrings(string(a.Status), a.Error)
}

// asDecoded is a deep copy of rec as decoding its encoding gives it back, and
// whether it is one (if not, it copies nothing).
func (rec runRecord) asDecoded() (runRecord, bool) {
	ok := asDecodedTimes(rec.CreatedAt, rec.UpdatedAt, rec.StartedAt, rec.FinishedAt) &&
		asDecodedStrings(rec.Pipeline, rec.Key, rec.Date, rec.Status, rec.Error, rec.Trigger, rec.Notify, rec.DefVersion, rec.WriteID) &&
		asDecodedStrings(rec.Steps...) && asDecodedJSON(rec.Graph)
	for k, v := range rec.Params {
		ok = ok && asDecodedStrings(k, v)
	}
	for k, v := range rec.Notes {
		ok = ok && asDecodedStrings(k, v)
	}
	for _, s := range rec.Summary {
		ok = ok && asDecodedStrings(s.Step, string(s.Status))
	}
	if !ok {
		return runRecord{}, false
	}
	rec = rec.clone()
	if len(rec.Params) == 0 {
		rec.Params = nil
	}
	if len(rec.Notes) == 0 {
		rec.Notes = nil
	}
	if len(rec.Summary) == 0 {
		rec.Summary = nil
	}
	if len(rec.Graph) == 0 {
		rec.Graph = nil
	}
	return rec, true
}

// asDecodedTimes reports whether each time decodes as itself: UTC (or the
// zero time) without a monotonic reading.
func asDecodedTimes(ts ...time.Time) bool {
	for _, t := range ts {
		if t != t.Round(0).UTC() {
			return false
		}
	}
	return true
}

// asDecodedStrings reports whether each string decodes as itself (encoding
// replaces invalid UTF-8).
func asDecodedStrings(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// asDecodedJSON reports whether raw JSON (valid, since it encoded) is stored
// as is: encoding compacts it and escapes <, >, & and U+2028, U+2029.
func asDecodedJSON(b []byte) bool {
	if bytes.ContainsAny(b, "<>&\u2028\u2029") {
		return false
	}
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

// putStep puts a step record a write committed: val, as stored at key, is
// the encoding of rec. val is the cache's from now on.
func (d *decoded) putStep(key, val []byte, rec stepRecord) {
	if rec, ok := rec.asDecoded(); ok {
		d.steps.put(string(key), val, rec)
	}
}

// putRun puts a run record a write committed: val, as stored at id, is the
// encoding of rec, and graph the decoding of its graph (immutable, kept as
// is). val is the cache's from now on.
func (d *decoded) putRun(id string, val []byte, rec runRecord, graph *pipeline.Graph) {
	if rec, ok := rec.asDecoded(); ok {
		d.runs.put(id, val, decodedRun{rec: rec, graph: graph})
	}
}
