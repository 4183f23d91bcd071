package ledgertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// sameTime reports whether a and b are the same instant at microsecond
// precision (Firestore keeps microseconds), and a zero time stays zero.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

// sameJSON reports whether a and b hold the same JSON value; empty and absent
// are the same.
func sameJSON(a, b json.RawMessage) (bool, error) {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b), nil
	}
	if bytes.Equal(a, b) {
		return true, nil
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false, fmt.Errorf("bad JSON %q: %w", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false, fmt.Errorf("bad JSON %q: %w", b, err)
	}
	return reflect.DeepEqual(va, vb), nil
}

// runDiff lists the fields in which got differs from want, ignoring Version and
// Steps.
func runDiff(got, want pipeline.Run) []string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	tm := func(name string, g, w time.Time) {
		if !sameTime(g, w) {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("Pipeline", got.Pipeline, want.Pipeline)
	str("Key", got.Key, want.Key)
	str("Date", got.Date, want.Date)
	if !maps.Equal(got.Params, want.Params) { // nil and empty are equal
		d = append(d, fmt.Sprintf("Params = %v, want %v", got.Params, want.Params))
	}
	str("Status", string(got.Status), string(want.Status))
	str("Error", got.Error, want.Error)
	str("Trigger", got.Trigger, want.Trigger)
	tm("CreatedAt", got.CreatedAt, want.CreatedAt)
	tm("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	tm("StartedAt", got.StartedAt, want.StartedAt)
	tm("FinishedAt", got.FinishedAt, want.FinishedAt)
	str("Notify", string(got.Notify), string(want.Notify))
	if !maps.Equal(got.Notes, want.Notes) {
		d = append(d, fmt.Sprintf("Notes = %v, want %v", got.Notes, want.Notes))
	}
	if !slices.Equal(got.Summary, want.Summary) { // nil and empty are equal
		d = append(d, fmt.Sprintf("Summary = %v, want %v", got.Summary, want.Summary))
	}
	str("DefinitionVersion", got.DefinitionVersion, want.DefinitionVersion)
	if got.Epoch != want.Epoch {
		d = append(d, fmt.Sprintf("Epoch = %d, want %d", got.Epoch, want.Epoch))
	}
	if (got.Graph == nil) != (want.Graph == nil) {
		d = append(d, fmt.Sprintf("Graph = %v, want %v", got.Graph, want.Graph))
	} else if got.Graph != nil {
		gj, _ := json.Marshal(got.Graph)
		wj, _ := json.Marshal(want.Graph)
		if same, err := sameJSON(gj, wj); err != nil || !same {
			d = append(d, fmt.Sprintf("Graph = %s, want %s", gj, wj))
		}
	}
	return d
}

// stepDiff lists the fields in which got differs from want, ignoring Version.
func stepDiff(got, want pipeline.StepRun) []string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	num := func(name string, g, w int) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %d, want %d", name, g, w))
		}
	}
	tm := func(name string, g, w time.Time) {
		if !sameTime(g, w) {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	str("RunID", got.RunID, want.RunID)
	str("Step", got.Step, want.Step)
	str("Status", string(got.Status), string(want.Status))
	num("Generation", got.Generation, want.Generation)
	num("Attempts", got.Attempts, want.Attempts)
	num("MaxAttempts", got.MaxAttempts, want.MaxAttempts)
	tm("LeaseUntil", got.LeaseUntil, want.LeaseUntil)
	tm("StartedAt", got.StartedAt, want.StartedAt)
	tm("FinishedAt", got.FinishedAt, want.FinishedAt)
	tm("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	str("Error", got.Error, want.Error)
	if same, err := sameJSON(got.Output, want.Output); err != nil || !same {
		d = append(d, fmt.Sprintf("Output = %s, want %s (%v)", got.Output, want.Output, err))
	}
	if got.Forced != want.Forced {
		d = append(d, fmt.Sprintf("Forced = %t, want %t", got.Forced, want.Forced))
	}
	if got.Only != want.Only {
		d = append(d, fmt.Sprintf("Only = %t, want %t", got.Only, want.Only))
	}
	if !maps.Equal(got.Inputs, want.Inputs) { // nil and empty are equal
		d = append(d, fmt.Sprintf("Inputs = %v, want %v", got.Inputs, want.Inputs))
	}
	if same, err := sameJSON(got.AsyncState, want.AsyncState); err != nil || !same {
		d = append(d, fmt.Sprintf("AsyncState = %s, want %s (%v)", got.AsyncState, want.AsyncState, err))
	}
	num("Check", got.Check, want.Check)
	tm("WaitingSince", got.WaitingSince, want.WaitingSince)
	tm("NextCheckAt", got.NextCheckAt, want.NextCheckAt)
	str("Link", got.Link, want.Link)
	d = append(d, historyDiff(got.History, want.WithHistory().History)...)
	return d
}

// historyDiff lists the differences of two step histories (times at
// microsecond precision).
func historyDiff(got, want []pipeline.Attempt) []string {
	if len(got) != len(want) {
		return []string{fmt.Sprintf("History has %d attempts %+v, want %d %+v", len(got), got, len(want), want)}
	}
	var d []string
	for i := range want {
		g, w := got[i], want[i]
		if g.N != w.N || g.Generation != w.Generation || g.Status != w.Status || g.Error != w.Error ||
			!sameTime(g.StartedAt, w.StartedAt) || !sameTime(g.WaitingSince, w.WaitingSince) || !sameTime(g.FinishedAt, w.FinishedAt) {
			d = append(d, fmt.Sprintf("History[%d] = %+v, want %+v", i, g, w))
		}
	}
	return d
}

func checkRun(t *testing.T, what string, got, want pipeline.Run) {
	t.Helper()
	for _, d := range runDiff(got, want) {
		t.Errorf("%s: run %s: %s", what, want.ID, d)
	}
}

func checkStep(t *testing.T, what string, got, want pipeline.StepRun) {
	t.Helper()
	for _, d := range stepDiff(got, want) {
		t.Errorf("%s: step %s/%s: %s", what, want.RunID, want.Step, d)
	}
}

// checkSteps compares step lists in order, by every field and (if
// versionsToo) by Version.
func checkSteps(t *testing.T, what string, got, want []pipeline.StepRun, versionsToo bool) {
	t.Helper()
	if g, w := stepNamesOf(got), stepNamesOf(want); !slices.Equal(g, w) {
		t.Errorf("%s: steps %v, want %v", what, g, w)
		return
	}
	for i := range want {
		checkStep(t, what, got[i], want[i])
		if versionsToo && got[i].Version != want[i].Version {
			t.Errorf("%s: step %s Version = %d, want %d (unchanged)", what, want[i].Step, got[i].Version, want[i].Version)
		}
	}
}

func stepNamesOf(steps []pipeline.StepRun) []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Step
	}
	return names
}

func runIDsOf(runs []pipeline.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}
