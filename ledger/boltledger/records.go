package boltledger

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// runRecord is a run as stored: the domain's fields (including the ones its
// JSON hides) and the run's step names in creation order.
type runRecord struct {
	Pipeline   string                 `json:"pipeline"`
	Key        string                 `json:"key"`
	Date       string                 `json:"date"`
	Params     map[string]string      `json:"params,omitempty"`
	Status     string                 `json:"status"`
	Error      string                 `json:"error,omitempty"`
	Trigger    string                 `json:"trigger,omitempty"`
	CreatedAt  time.Time              `json:"created_at"`
	UpdatedAt  time.Time              `json:"updated_at,omitzero"`
	StartedAt  time.Time              `json:"started_at,omitzero"`
	FinishedAt time.Time              `json:"finished_at,omitzero"`
	Notify     string                 `json:"notify,omitempty"`
	Notes      map[string]string      `json:"notes,omitempty"`
	Epoch      int64                  `json:"epoch,omitempty"`
	Steps      []string               `json:"steps"`
	Summary    []pipeline.StepSummary `json:"summary,omitempty"`
	// DefVersion and Graph are the run's definition, written by CreateRun
	// only (UpdateRun keeps them).
	DefVersion string          `json:"def_version,omitempty"`
	Graph      json.RawMessage `json:"graph,omitempty"`
	WriteID    string          `json:"write_id,omitempty"`
}

func newRunRecord(r pipeline.Run, steps []string) (runRecord, error) {
	var graph json.RawMessage
	if r.Graph != nil {
		b, err := json.Marshal(r.Graph)
		if err != nil {
			return runRecord{}, fmt.Errorf("%w: graph: %w", pipeline.ErrInvalid, err)
		}
		graph = b
	}
	return runRecord{
		Pipeline:   r.Pipeline,
		Key:        r.Key,
		Date:       r.Date,
		Params:     r.Params,
		Status:     string(r.Status),
		Error:      r.Error,
		Trigger:    r.Trigger,
		CreatedAt:  r.CreatedAt,
		UpdatedAt:  r.UpdatedAt,
		StartedAt:  r.StartedAt,
		FinishedAt: r.FinishedAt,
		Notify:     string(r.Notify),
		Notes:      r.Notes,
		Summary:    r.Summary,
		Epoch:      r.Epoch,
		Steps:      steps,
		DefVersion: r.DefinitionVersion,
		Graph:      graph,
		WriteID:    newWriteID(),
	}, nil
}

// runWith is the stored record as the domain's, with graph, its decoded
// Graph (the run keeps rec's maps and slices).
func (rec runRecord) runWith(id string, version int64, graph *pipeline.Graph) pipeline.Run {
	return pipeline.Run{
		ID:         id,
		Pipeline:   rec.Pipeline,
		Key:        rec.Key,
		Date:       rec.Date,
		Params:     rec.Params,
		Status:     pipeline.RunStatus(rec.Status),
		Error:      rec.Error,
		Trigger:    rec.Trigger,
		CreatedAt:  rec.CreatedAt,
		UpdatedAt:  rec.UpdatedAt,
		StartedAt:  rec.StartedAt,
		FinishedAt: rec.FinishedAt,
		Notify:     pipeline.NotifyState(rec.Notify),
		Notes:      rec.Notes,
		Summary:    rec.Summary,
		Epoch:      rec.Epoch,
		Version:    version,
		WriteID:    rec.WriteID,

		DefinitionVersion: rec.DefVersion,
		Graph:             graph,
	}
}

// stepRecord is a step as stored.
type stepRecord struct {
	Status       string          `json:"status"`
	Generation   int             `json:"generation"`
	Attempts     int             `json:"attempts"`
	MaxAttempts  int             `json:"max_attempts"`
	LeaseUntil   time.Time       `json:"lease_until,omitzero"`
	StartedAt    time.Time       `json:"started_at,omitzero"`
	FinishedAt   time.Time       `json:"finished_at,omitzero"`
	UpdatedAt    time.Time       `json:"updated_at,omitzero"`
	Error        string          `json:"error,omitempty"`
	Output       json.RawMessage `json:"output,omitempty"`
	Forced       bool            `json:"forced,omitempty"`
	Only         bool            `json:"only,omitempty"`
	Inputs       map[string]int  `json:"inputs,omitempty"`
	AsyncState   json.RawMessage `json:"async_state,omitempty"`
	Check        int             `json:"check,omitempty"`
	WaitingSince time.Time       `json:"waiting_since,omitzero"`
	NextCheckAt  time.Time       `json:"next_check_at,omitzero"`
	Link         string          `json:"link,omitempty"`
	// History is the step's attempts (pipeline.StepRun.WithHistory);
	// absent in records written before steps kept one.
	History  []pipeline.Attempt `json:"history,omitempty"`
	RunInput string             `json:"run_input,omitempty"`
	WriteID  string             `json:"write_id,omitempty"`
}

// newStepRecord is s as stored, its history brought up to date with its
// current attempt in this same write.
func newStepRecord(s pipeline.StepRun) stepRecord {
	s = s.WithHistory()
	return stepRecord{
		Status:       string(s.Status),
		Generation:   s.Generation,
		Attempts:     s.Attempts,
		MaxAttempts:  s.MaxAttempts,
		LeaseUntil:   s.LeaseUntil,
		StartedAt:    s.StartedAt,
		FinishedAt:   s.FinishedAt,
		UpdatedAt:    s.UpdatedAt,
		Error:        s.Error,
		Output:       s.Output,
		Forced:       s.Forced,
		Only:         s.Only,
		Inputs:       s.Inputs,
		AsyncState:   s.AsyncState,
		Check:        s.Check,
		WaitingSince: s.WaitingSince,
		NextCheckAt:  s.NextCheckAt,
		Link:         s.Link,
		History:      s.History,
		RunInput:     s.RunInput,
		WriteID:      newWriteID(),
	}
}

// step is the stored record as the domain's; a record without a history
// shows its last attempt.
func (rec stepRecord) step(runID, name string, version int64) pipeline.StepRun {
	return pipeline.StepRun{
		RunID:        runID,
		Step:         name,
		Status:       pipeline.StepStatus(rec.Status),
		Generation:   rec.Generation,
		Attempts:     rec.Attempts,
		MaxAttempts:  rec.MaxAttempts,
		LeaseUntil:   rec.LeaseUntil,
		StartedAt:    rec.StartedAt,
		FinishedAt:   rec.FinishedAt,
		UpdatedAt:    rec.UpdatedAt,
		Error:        rec.Error,
		Output:       rec.Output,
		Forced:       rec.Forced,
		Only:         rec.Only,
		Inputs:       rec.Inputs,
		AsyncState:   rec.AsyncState,
		Check:        rec.Check,
		WaitingSince: rec.WaitingSince,
		NextCheckAt:  rec.NextCheckAt,
		Link:         rec.Link,
		History:      rec.History,
		RunInput:     rec.RunInput,
		Version:      version,
		WriteID:      rec.WriteID,
	}.WithHistory()
}

// newWriteID is a fresh identifier for one write.
func newWriteID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// versionLen is the size of the version prefix of every stored value.
const versionLen = 8

// encode is a stored value: version, then rec as JSON. Encoding errors (an
// Output that is not JSON, a time past year 9999) are the caller's: ErrInvalid.
func encode(version int64, rec any) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrInvalid, err)
	}
	v := make([]byte, versionLen, versionLen+len(b))
	binary.BigEndian.PutUint64(v, uint64(version))
	return append(v, b...), nil
}

// encodeStep is encode of a step record, the same bytes without reflection
// (appendStepJSON).
func encodeStep(version int64, rec *stepRecord) ([]byte, error) {
	v := make([]byte, versionLen, versionLen+512)
	binary.BigEndian.PutUint64(v, uint64(version))
	v, err := appendStepJSON(v, rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrInvalid, err)
	}
	return v, nil
}

// withVersion replaces the version prefix of an encoded value, in place.
func withVersion(v []byte, version int64) []byte {
	binary.BigEndian.PutUint64(v, uint64(version))
	return v
}

// versionOf is the version of a stored value.
func versionOf(v []byte) (int64, error) {
	if len(v) < versionLen {
		return 0, errors.New("corrupt record: too short")
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// decode reads a stored value into rec and returns its version. v may be
// memory of a transaction: rec must not keep it (json.Unmarshal copies).
func decode(v []byte, rec any) (int64, error) {
	version, err := versionOf(v)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(v[versionLen:], rec); err != nil {
		return 0, fmt.Errorf("corrupt record: %w", err)
	}
	return version, nil
}

// stepKey is the key of a step: the run ID with its length first, so that no
// run's keys are a prefix of another's, then the step name.
func stepKey(runID, step string) []byte {
	k := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(runID)+len(step)), uint64(len(runID)))
	return append(append(k, runID...), step...)
}

// timeKeyLen is the size of a created-at key.
const timeKeyLen = 12

// appendTimeKey appends 12 bytes that sort like t: Unix seconds with the sign
// bit flipped, then nanoseconds, both big-endian. It orders every time.Time,
// the zero one included.
func appendTimeKey(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// timeIndexKey is a run's key in the created-at index.
func timeIndexKey(created time.Time, runID string) []byte {
	return append(appendTimeKey(make([]byte, 0, timeKeyLen+len(runID)), created), runID...)
}

// pipelinePrefix is the key prefix of a pipeline's runs in the pipeline index.
func pipelinePrefix(p string) []byte {
	return append(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(p)+timeKeyLen), uint64(len(p))), p...)
}

// pipelineIndexKey is a run's key in the pipeline index.
func pipelineIndexKey(p string, created time.Time, runID string) []byte {
	return append(appendTimeKey(pipelinePrefix(p), created), runID...)
}
