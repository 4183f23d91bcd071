package boltledger

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pipelinehq/pipeline/pipeline"
)

// appendStepJSON appends rec as encoding/json encodes it, byte for byte
// (TestStepJSONIsEncodingJSON), without reflection: a step record is written
// twice per step transition (the step's result and its successor's claim).
// Values the fast paths do not cover exactly (strings needing escapes, raw
// JSON with spaces or non-ASCII, times outside years 0-9999) are encoded by
// encoding/json itself. It fails where json.Marshal fails.
func appendStepJSON(b []byte, rec *stepRecord) ([]byte, error) {
	w := jsonWriter{b: b}
	w.str(`{"status":`, rec.Status)
	w.int(`,"generation":`, rec.Generation)
	w.int(`,"attempts":`, rec.Attempts)
	w.int(`,"max_attempts":`, rec.MaxAttempts)
	w.timeOmitZero(`,"lease_until":`, rec.LeaseUntil)
	w.timeOmitZero(`,"started_at":`, rec.StartedAt)
	w.timeOmitZero(`,"finished_at":`, rec.FinishedAt)
	w.timeOmitZero(`,"updated_at":`, rec.UpdatedAt)
	w.strOmitEmpty(`,"error":`, rec.Error)
	w.rawOmitEmpty(`,"output":`, rec.Output)
	if rec.Forced {
		w.b = append(w.b, `,"forced":true`...)
	}
	if rec.Only {
		w.b = append(w.b, `,"only":true`...)
	}
	if len(rec.Inputs) > 0 {
		keys := make([]string, 0, len(rec.Inputs))
		for k := range rec.Inputs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w.b = append(w.b, `,"inputs":{`...)
		for i, k := range keys {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.str("", k)
			w.int(":", rec.Inputs[k])
		}
		w.b = append(w.b, '}')
	}
	w.rawOmitEmpty(`,"async_state":`, rec.AsyncState)
	if rec.Check != 0 {
		w.int(`,"check":`, rec.Check)
	}
	w.timeOmitZero(`,"waiting_since":`, rec.WaitingSince)
	w.timeOmitZero(`,"next_check_at":`, rec.NextCheckAt)
	w.strOmitEmpty(`,"link":`, rec.Link)
	if len(rec.History) > 0 {
		w.b = append(w.b, `,"history":[`...)
		for i := range rec.History {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.attempt(&rec.History[i])
		}
		w.b = append(w.b, ']')
	}
	w.strOmitEmpty(`,"run_input":`, rec.RunInput)
	w.strOmitEmpty(`,"write_id":`, rec.WriteID)
	w.b = append(w.b, '}')
	return w.b, w.err
}

// attempt appends a as encoding/json encodes a pipeline.Attempt.
func (w *jsonWriter) attempt(a *pipeline.Attempt) {
	w.int(`{"n":`, a.N)
	w.int(`,"generation":`, a.Generation)
	w.str(`,"status":`, string(a.Status))
	w.time(`,"started_at":`, a.StartedAt)
	w.timeOmitZero(`,"waiting_since":`, a.WaitingSince)
	w.timeOmitZero(`,"finished_at":`, a.FinishedAt)
	w.strOmitEmpty(`,"error":`, a.Error)
	w.b = append(w.b, '}')
}

// jsonWriter appends JSON fields, each after its prefix (the punctuation and
// the key before the value), keeping the first error: once it has one, it
// appends nothing more.
type jsonWriter struct {
	b   []byte
	err error
}

func (w *jsonWriter) int(prefix string, v int) {
	w.b = strconv.AppendInt(append(w.b, prefix...), int64(v), 10)
}

func (w *jsonWriter) str(prefix, v string) {
	w.b = appendJSONString(append(w.b, prefix...), v)
}

// strOmitEmpty is str, or nothing for "" (omitempty).
func (w *jsonWriter) strOmitEmpty(prefix, v string) {
	if v != "" {
		w.str(prefix, v)
	}
}

func (w *jsonWriter) time(prefix string, t time.Time) {
	if w.err == nil {
		w.b, w.err = appendJSONTime(append(w.b, prefix...), t)
	}
}

// timeOmitZero is time, or nothing for the zero time (omitzero).
func (w *jsonWriter) timeOmitZero(prefix string, t time.Time) {
	if !t.IsZero() {
		w.time(prefix, t)
	}
}

// rawOmitEmpty appends raw as a json.RawMessage field, or nothing when it is
// empty (omitempty).
func (w *jsonWriter) rawOmitEmpty(prefix string, raw json.RawMessage) {
	if len(raw) > 0 && w.err == nil {
		w.b, w.err = appendRawJSON(append(w.b, prefix...), raw)
	}
}

// appendJSONTime appends t as time.Time.MarshalJSON does; a time it refuses
// (a year outside 0-9999, a zone offset of 24 hours or more) is handed to
// encoding/json for its error.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	_, offset := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || offset <= -24*3600 || offset >= 24*3600 {
		j, err := json.Marshal(t) // an error, as json.Marshal reports it
		if err != nil {
			return nil, err
		}
		return append(b, j...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendJSONString appends s quoted as encoding/json quotes it (escaping
// HTML characters): directly when it needs no escape, else by json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always encodes
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendRawJSON appends raw as encoding/json encodes a json.RawMessage
// (compacted, HTML characters escaped, an error if it is not JSON):
// directly when it is valid and has nothing to compact or escape.
func appendRawJSON(b []byte, raw json.RawMessage) ([]byte, error) {
	for _, c := range raw {
		if c <= ' ' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			j, err := json.Marshal(raw)
			if err != nil {
				return nil, err
			}
			return append(b, j...), nil
		}
	}
	if !json.Valid(raw) {
		_, err := json.Marshal(raw) // its error, as json.Marshal reports it
		return nil, err
	}
	return append(b, raw...), nil
}
