package firestoreledger

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Field names of the documents. Queries and updates use these.
const (
	fRunID      = "run_id"
	fPipeline   = "pipeline"
	fKey        = "key"
	fDate       = "date"
	fParams     = "params"
	fStatus     = "status"
	fError      = "error"
	fTrigger    = "trigger"
	fCreatedAt  = "created_at"
	fUpdatedAt  = "updated_at"
	fFinishedAt = "finished_at"
	fNotify     = "notify"
	fNotes      = "notes"
	fSummary    = "summary"
	fDefVersion = "def_version"
	fGraph      = "graph"
	fWriteID    = "write_id"
	fEpoch      = "epoch"

	fStep         = "step"
	fSeq          = "seq"
	fGeneration   = "generation"
	fAttempts     = "attempts"
	fMaxAttempts  = "max_attempts"
	fLeaseUntil   = "lease_until"
	fStartedAt    = "started_at"
	fOutput       = "output"
	fForced       = "forced"
	fOnly         = "only"
	fInputs       = "inputs"
	fRunInput     = "run_input"
	fAsyncState   = "async_state"
	fCheck        = "check"
	fWaitingSince = "waiting_since"
	fNextCheckAt  = "next_check_at"
	fLink         = "link"
	fHistory      = "history"
)

// runDoc is a run document. Zero times are stored as null.
type runDoc struct {
	RunID      string            `firestore:"run_id"`
	Pipeline   string            `firestore:"pipeline"`
	Key        string            `firestore:"key"`
	Date       string            `firestore:"date"`
	Params     map[string]string `firestore:"params"`
	Status     string            `firestore:"status"`
	Error      string            `firestore:"error"`
	Trigger    string            `firestore:"trigger"`
	CreatedAt  time.Time         `firestore:"created_at"` // never null: ListRuns orders on it
	UpdatedAt  *time.Time        `firestore:"updated_at"`
	StartedAt  *time.Time        `firestore:"started_at"`
	FinishedAt *time.Time        `firestore:"finished_at"`
	Notify     string            `firestore:"notify"`
	Notes      map[string]string `firestore:"notes"`
	Epoch      int64             `firestore:"epoch"`
	// DefVersion and Graph (JSON) are the run's definition, written by
	// CreateRun only.
	DefVersion string `firestore:"def_version"`
	Graph      string `firestore:"graph"`
	// WriteID identifies the last write, so that a writer whose reply was
	// lost recognises its own write.
	WriteID string `firestore:"write_id"`
	// Summary is the steps' summary written when the run finishes.
	Summary []summaryDoc `firestore:"summary"`
}

// summaryDoc is one step of a run's summary.
type summaryDoc struct {
	Step        string `firestore:"step"`
	Status      string `firestore:"status"`
	Attempts    int    `firestore:"attempts"`
	MaxAttempts int    `firestore:"max_attempts"`
	Micros      int64  `firestore:"us"`
}

func toSummaryDocs(ss []pipeline.StepSummary) []summaryDoc {
	if len(ss) == 0 {
		return nil
	}
	out := make([]summaryDoc, len(ss))
	for i, s := range ss {
		out[i] = summaryDoc{Step: s.Step, Status: string(s.Status), Attempts: s.Attempts, MaxAttempts: s.MaxAttempts, Micros: s.Micros}
	}
	return out
}

func fromSummaryDocs(ds []summaryDoc) []pipeline.StepSummary {
	if len(ds) == 0 {
		return nil
	}
	out := make([]pipeline.StepSummary, len(ds))
	for i, d := range ds {
		out[i] = pipeline.StepSummary{Step: d.Step, Status: pipeline.StepStatus(d.Status), Attempts: d.Attempts, MaxAttempts: d.MaxAttempts, Micros: d.Micros}
	}
	return out
}

// stepDoc is a step document. Seq is the step's position in CreateRun's
// slice, the order GetRun returns steps in.
type stepDoc struct {
	RunID        string         `firestore:"run_id"`
	Step         string         `firestore:"step"`
	Seq          int            `firestore:"seq"`
	Status       string         `firestore:"status"`
	Generation   int            `firestore:"generation"`
	Attempts     int            `firestore:"attempts"`
	MaxAttempts  int            `firestore:"max_attempts"`
	LeaseUntil   *time.Time     `firestore:"lease_until"`
	StartedAt    *time.Time     `firestore:"started_at"`
	FinishedAt   *time.Time     `firestore:"finished_at"`
	UpdatedAt    *time.Time     `firestore:"updated_at"`
	Error        string         `firestore:"error"`
	Output       string         `firestore:"output"`
	Forced       bool           `firestore:"forced"`
	Only         bool           `firestore:"only"`
	Inputs       map[string]int `firestore:"inputs"`
	AsyncState   string         `firestore:"async_state"`
	Check        int            `firestore:"check"`
	WaitingSince *time.Time     `firestore:"waiting_since"`
	NextCheckAt  *time.Time     `firestore:"next_check_at"`
	Link         string         `firestore:"link"`
	// History is the step's attempts (pipeline.StepRun.WithHistory);
	// absent in documents written before steps kept one.
	History  []attemptDoc `firestore:"history"`
	RunInput string       `firestore:"run_input"`
	WriteID  string       `firestore:"write_id"`
}

// attemptDoc is one attempt of a step's history. Zero times are null.
type attemptDoc struct {
	N            int        `firestore:"n"`
	Generation   int        `firestore:"generation"`
	Status       string     `firestore:"status"`
	StartedAt    *time.Time `firestore:"started_at"`
	WaitingSince *time.Time `firestore:"waiting_since"`
	FinishedAt   *time.Time `firestore:"finished_at"`
	Error        string     `firestore:"error"`
}

func toAttemptDocs(h []pipeline.Attempt) []attemptDoc {
	if len(h) == 0 {
		return nil
	}
	out := make([]attemptDoc, len(h))
	for i, a := range h {
		out[i] = attemptDoc{N: a.N, Generation: a.Generation, Status: string(a.Status), StartedAt: ts(a.StartedAt),
			WaitingSince: ts(a.WaitingSince), FinishedAt: ts(a.FinishedAt), Error: a.Error}
	}
	return out
}

func fromAttemptDocs(ds []attemptDoc) []pipeline.Attempt {
	if len(ds) == 0 {
		return nil
	}
	out := make([]pipeline.Attempt, len(ds))
	for i, d := range ds {
		out[i] = pipeline.Attempt{N: d.N, Generation: d.Generation, Status: pipeline.StepStatus(d.Status), StartedAt: unts(d.StartedAt),
			WaitingSince: unts(d.WaitingSince), FinishedAt: unts(d.FinishedAt), Error: d.Error}
	}
	return out
}

func toRunDoc(r pipeline.Run) (runDoc, error) {
	var graph string
	if r.Graph != nil {
		b, err := json.Marshal(r.Graph)
		if err != nil {
			return runDoc{}, fmt.Errorf("%w: graph: %w", pipeline.ErrInvalid, err)
		}
		graph = string(b)
	}
	return runDoc{
		RunID:      r.ID,
		Pipeline:   r.Pipeline,
		Key:        r.Key,
		Date:       r.Date,
		Params:     r.Params,
		Status:     string(r.Status),
		Error:      r.Error,
		Trigger:    r.Trigger,
		CreatedAt:  r.CreatedAt.Truncate(time.Microsecond).UTC(),
		UpdatedAt:  ts(r.UpdatedAt),
		StartedAt:  ts(r.StartedAt),
		FinishedAt: ts(r.FinishedAt),
		Notify:     string(r.Notify),
		Notes:      r.Notes,
		Summary:    toSummaryDocs(r.Summary),
		Epoch:      r.Epoch,
		DefVersion: r.DefinitionVersion,
		Graph:      graph,
		WriteID:    r.WriteID,
	}, nil
}

// runUpdates are the fields UpdateRun writes: all but the run's identity,
// creation time and definition. r.WriteID is this write's.
func runUpdates(r pipeline.Run) []firestore.Update {
	d, _ := toRunDoc(pipeline.Run{ID: r.ID, Pipeline: r.Pipeline, Key: r.Key, Date: r.Date, Params: r.Params,
		Status: r.Status, Error: r.Error, Trigger: r.Trigger, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Notify: r.Notify, Notes: r.Notes, Epoch: r.Epoch, WriteID: r.WriteID, Summary: r.Summary})
	return []firestore.Update{
		{Path: fDate, Value: d.Date},
		{Path: fParams, Value: d.Params},
		{Path: fStatus, Value: d.Status},
		{Path: fError, Value: d.Error},
		{Path: fTrigger, Value: d.Trigger},
		{Path: fUpdatedAt, Value: d.UpdatedAt},
		{Path: fStartedAt, Value: d.StartedAt},
		{Path: fFinishedAt, Value: d.FinishedAt},
		{Path: fNotify, Value: d.Notify},
		{Path: fNotes, Value: d.Notes},
		{Path: fSummary, Value: d.Summary},
		{Path: fEpoch, Value: d.Epoch},
		{Path: fWriteID, Value: d.WriteID},
	}
}

// toStepDoc is s as stored, its history brought up to date with its current
// attempt in this same write.
func toStepDoc(s pipeline.StepRun, seq int) stepDoc {
	s = s.WithHistory()
	return stepDoc{
		RunID:        s.RunID,
		Step:         s.Step,
		Seq:          seq,
		Status:       string(s.Status),
		Generation:   s.Generation,
		Attempts:     s.Attempts,
		MaxAttempts:  s.MaxAttempts,
		LeaseUntil:   ts(s.LeaseUntil),
		StartedAt:    ts(s.StartedAt),
		FinishedAt:   ts(s.FinishedAt),
		UpdatedAt:    ts(s.UpdatedAt),
		Error:        s.Error,
		Output:       string(s.Output),
		Forced:       s.Forced,
		Only:         s.Only,
		Inputs:       s.Inputs,
		AsyncState:   string(s.AsyncState),
		Check:        s.Check,
		WaitingSince: ts(s.WaitingSince),
		NextCheckAt:  ts(s.NextCheckAt),
		Link:         s.Link,
		History:      toAttemptDocs(s.History),
		RunInput:     s.RunInput,
		WriteID:      s.WriteID,
	}
}

// stepUpdates are the fields UpdateStep writes: all but the step's identity
// and position.
func stepUpdates(s pipeline.StepRun) []firestore.Update {
	d := toStepDoc(s, 0)
	return []firestore.Update{
		{Path: fStatus, Value: d.Status},
		{Path: fGeneration, Value: d.Generation},
		{Path: fAttempts, Value: d.Attempts},
		{Path: fMaxAttempts, Value: d.MaxAttempts},
		{Path: fLeaseUntil, Value: d.LeaseUntil},
		{Path: fStartedAt, Value: d.StartedAt},
		{Path: fFinishedAt, Value: d.FinishedAt},
		{Path: fUpdatedAt, Value: d.UpdatedAt},
		{Path: fError, Value: d.Error},
		{Path: fOutput, Value: d.Output},
		{Path: fForced, Value: d.Forced},
		{Path: fOnly, Value: d.Only},
		{Path: fInputs, Value: d.Inputs},
		{Path: fAsyncState, Value: d.AsyncState},
		{Path: fCheck, Value: d.Check},
		{Path: fWaitingSince, Value: d.WaitingSince},
		{Path: fNextCheckAt, Value: d.NextCheckAt},
		{Path: fLink, Value: d.Link},
		{Path: fHistory, Value: d.History},
		{Path: fRunInput, Value: d.RunInput},
		{Path: fWriteID, Value: d.WriteID},
	}
}

func (d runDoc) run(version int64) (pipeline.Run, error) {
	var graph *pipeline.Graph
	if d.Graph != "" {
		graph = new(pipeline.Graph)
		if err := json.Unmarshal([]byte(d.Graph), graph); err != nil {
			return pipeline.Run{}, fmt.Errorf("run %s: graph: %w", d.RunID, err)
		}
	}
	return pipeline.Run{
		ID:         d.RunID,
		Pipeline:   d.Pipeline,
		Key:        d.Key,
		Date:       d.Date,
		Params:     d.Params,
		Status:     pipeline.RunStatus(d.Status),
		Error:      d.Error,
		Trigger:    d.Trigger,
		CreatedAt:  d.CreatedAt.UTC(),
		UpdatedAt:  unts(d.UpdatedAt),
		StartedAt:  unts(d.StartedAt),
		FinishedAt: unts(d.FinishedAt),
		Notify:     pipeline.NotifyState(d.Notify),
		Notes:      d.Notes,
		Summary:    fromSummaryDocs(d.Summary),
		Epoch:      d.Epoch,
		Version:    version,
		WriteID:    d.WriteID,

		DefinitionVersion: d.DefVersion,
		Graph:             graph,
	}, nil
}

func (d stepDoc) stepRun(version int64) pipeline.StepRun {
	s := pipeline.StepRun{
		RunID:        d.RunID,
		Step:         d.Step,
		Status:       pipeline.StepStatus(d.Status),
		Generation:   d.Generation,
		Attempts:     d.Attempts,
		MaxAttempts:  d.MaxAttempts,
		LeaseUntil:   unts(d.LeaseUntil),
		StartedAt:    unts(d.StartedAt),
		FinishedAt:   unts(d.FinishedAt),
		UpdatedAt:    unts(d.UpdatedAt),
		Error:        d.Error,
		Forced:       d.Forced,
		Only:         d.Only,
		Inputs:       d.Inputs,
		Check:        d.Check,
		WaitingSince: unts(d.WaitingSince),
		NextCheckAt:  unts(d.NextCheckAt),
		Link:         d.Link,
		History:      fromAttemptDocs(d.History),
		RunInput:     d.RunInput,
		Version:      version,
		WriteID:      d.WriteID,
	}.WithHistory() // a document without a history shows its last attempt
	if d.Output != "" {
		s.Output = json.RawMessage(d.Output)
	}
	if d.AsyncState != "" {
		s.AsyncState = json.RawMessage(d.AsyncState)
	}
	return s
}

// runFromSnap decodes a run document.
func runFromSnap(snap *firestore.DocumentSnapshot) (pipeline.Run, error) {
	var d runDoc
	if err := snap.DataTo(&d); err != nil {
		return pipeline.Run{}, fmt.Errorf("decode run %s: %w", snap.Ref.ID, err)
	}
	r, err := d.run(version(snap.UpdateTime))
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("decode run %s: %w", snap.Ref.ID, err)
	}
	return r, nil
}

// stepFromSnap decodes a step document.
func stepFromSnap(snap *firestore.DocumentSnapshot) (pipeline.StepRun, error) {
	var d stepDoc
	if err := snap.DataTo(&d); err != nil {
		return pipeline.StepRun{}, fmt.Errorf("decode step %s: %w", snap.Ref.Path, err)
	}
	return d.stepRun(version(snap.UpdateTime)), nil
}

// version is a document update time as a record Version.
func version(updated time.Time) int64 { return updated.UnixNano() }

// updateTime is the inverse of version, for the LastUpdateTime precondition.
func updateTime(v int64) time.Time { return time.Unix(0, v).UTC() }

// ts stores a time as Firestore does (microseconds, UTC), zero as null.
func ts(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.Truncate(time.Microsecond).UTC()
	return &t
}

func unts(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// storedRun is what a round trip through Firestore makes of a run: the same
// record with times at Firestore's precision.
func storedRun(r pipeline.Run, v int64) pipeline.Run {
	d, _ := toRunDoc(pipeline.Run{ID: r.ID, Pipeline: r.Pipeline, Key: r.Key, Date: r.Date, Params: r.Params,
		Status: r.Status, Error: r.Error, Trigger: r.Trigger, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Notify: r.Notify, Notes: r.Notes, Epoch: r.Epoch, WriteID: r.WriteID, Summary: r.Summary})
	out, _ := d.run(v)
	out.DefinitionVersion, out.Graph = r.DefinitionVersion, r.Graph
	return out
}

// newWriteID is a fresh identifier for one write.
func newWriteID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// storedStep is what a round trip through Firestore makes of a step.
func storedStep(s pipeline.StepRun, v int64) pipeline.StepRun {
	return toStepDoc(s, 0).stepRun(v)
}
