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
	var err error
	b = append(b, `{"status":`...)
	b = appendJSONString(b, rec.Status)
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, int64(rec.Generation), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(rec.Attempts), 10)
	b = append(b, `,"max_attempts":`...)
	b = strconv.AppendInt(b, int64(rec.MaxAttempts), 10)
	if b, err = appendJSONTimeField(b, `,"lease_until":`, rec.LeaseUntil); err != nil {
		return nil, err
	}
	if b, err = appendJSONTimeField(b, `,"started_at":`, rec.StartedAt); err != nil {
		return nil, err
	}
	if b, err = appendJSONTimeField(b, `,"finished_at":`, rec.FinishedAt); err != nil {
		return nil, err
	}
	if b, err = appendJSONTimeField(b, `,"updated_at":`, rec.UpdatedAt); err != nil {
		return nil, err
	}
	if rec.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, rec.Error)
	}
	if len(rec.Output) > 0 {
		b = append(b, `,"output":`...)
		if b, err = appendRawJSON(b, rec.Output); err != nil {
			return nil, err
		}
	}
	if rec.Forced {
		b = append(b, `,"forced":true`...)
	}
	if rec.Only {
		b = append(b, `,"only":true`...)
	}
	if len(rec.Inputs) > 0 {
		b = append(b, `,"inputs":{`...)
		keys := make([]string, 0, len(rec.Inputs))
		for k := range rec.Inputs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(rec.Inputs[k]), 10)
		}
		b = append(b, '}')
	}
	if len(rec.AsyncState) > 0 {
		b = append(b, `,"async_state":`...)
		if b, err = appendRawJSON(b, rec.AsyncState); err != nil {
			return nil, err
		}
	}
	if rec.Check != 0 {
		b = append(b, `,"check":`...)
		b = strconv.AppendInt(b, int64(rec.Check), 10)
	}
	if b, err = appendJSONTimeField(b, `,"waiting_since":`, rec.WaitingSince); err != nil {
		return nil, err
	}
	if b, err = appendJSONTimeField(b, `,"next_check_at":`, rec.NextCheckAt); err != nil {
		return nil, err
	}
	if rec.Link != "" {
		b = append(b, `,"link":`...)
		b = appendJSONString(b, rec.Link)
	}
	if len(rec.History) > 0 {
		b = append(b, `,"history":[`...)
		for i := range rec.History {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendAttemptJSON(b, &rec.History[i]); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if rec.RunInput != "" {
		b = append(b, `,"run_input":`...)
		b = appendJSONString(b, rec.RunInput)
	}
	if rec.WriteID != "" {
		b = append(b, `,"write_id":`...)
		b = appendJSONString(b, rec.WriteID)
	}
	return append(b, '}'), nil
}

// appendAttemptJSON appends a as encoding/json encodes it.
func appendAttemptJSON(b []byte, a *pipeline.Attempt) ([]byte, error) {
	var err error
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, int64(a.N), 10)
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, int64(a.Generation), 10)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(a.Status))
	b = append(b, `,"started_at":`...)
	if b, err = appendJSONTime(b, a.StartedAt); err != nil {
		return nil, err
	}
	if b, err = appendJSONTimeField(b, `,"waiting_since":`, a.WaitingSince); err != nil {
		return nil, err
	}
	if b, err = appendJSONTimeField(b, `,"finished_at":`, a.FinishedAt); err != nil {
		return nil, err
	}
	if a.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, a.Error)
	}
	return append(b, '}'), nil
}

// appendJSONTimeField appends name and t, unless t is zero (omitzero).
func appendJSONTimeField(b []byte, name string, t time.Time) ([]byte, error) {
	if t.IsZero() {
		return b, nil
	}
	return appendJSONTime(append(b, name...), t)
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
