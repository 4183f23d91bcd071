package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// runInputDigest is the digest of a run's date and params that every step
// record of the run carries (StepRun.RunInput). A task names its run's date
// and params; the handler checks them against the step record it reads
// anyway, so the check costs no read. No params and empty params are the
// same.
func runInputDigest(date string, params map[string]string) string {
	return string(appendRunInputDigest(nil, date, params))
}

// appendRunInputDigest appends runInputDigest(date, params) to dst. The
// usual input (a date, no params) is hashed without encoding/json: its JSON
// form is written in place, the same bytes.
func appendRunInputDigest(dst []byte, date string, params map[string]string) []byte {
	var sum [sha256.Size]byte
	if len(params) == 0 && plainDate(date) {
		var buf [64]byte
		b := append(buf[:0], `{"d":"`...)
		b = append(b, date...)
		b = append(b, `","p":null}`...)
		sum = sha256.Sum256(b)
	} else {
		if len(params) == 0 {
			params = nil
		}
		// Marshalling strings cannot fail; map keys are sorted.
		b, _ := json.Marshal(struct {
			Date   string            `json:"d"`
			Params map[string]string `json:"p"`
		}{date, params})
		sum = sha256.Sum256(b)
	}
	return hex.AppendEncode(dst, sum[:16])
}

// plainDate reports whether date is short and made of digits and dashes
// only, so that its JSON string is itself between quotes.
func plainDate(date string) bool {
	if len(date) > 32 {
		return false
	}
	for i := 0; i < len(date); i++ {
		if c := date[i]; (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// checkRunInput refuses a task whose date or params are not those recorded
// on its run (a stale or hand-crafted task): the ledger is the truth, and a
// body never runs on inputs its run does not have. date is the task's date,
// normalised. A step record written before records carried the digest is
// checked against the run itself (one more read, for such runs only).
func (o *Orchestrator) checkRunInput(ctx context.Context, p TaskPayload, date string, cur StepRun) error {
	var buf [32]byte
	if cur.RunInput != "" && cur.RunInput == string(appendRunInputDigest(buf[:0], date, p.Params)) {
		return nil
	}
	r, err := o.ledger.GetRun(ctx, p.RunID)
	if err != nil {
		return fmt.Errorf("step %s of %s: %w", p.Step, p.RunID, err)
	}
	diff := inputDiff(date, p.Params, r.Date, r.Params)
	if len(diff) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the task of step %s of run %s does not carry the run's recorded input (%s); a stale or hand-crafted task is refused and changes nothing: enqueue the step of the run as recorded instead (pipeline enqueue %s --run %s)",
		ErrInvalid, p.Step, p.RunID, strings.Join(diff, "; "), p.Step, p.RunID)
}

// maxInputDiffs bounds the differences an error lists.
const maxInputDiffs = 5

// inputDiff lists how a task's date and params differ from the run's.
func inputDiff(date string, params map[string]string, runDate string, runParams map[string]string) []string {
	var diff []string
	if date != runDate {
		diff = append(diff, fmt.Sprintf("date %s, recorded %s", date, runDate))
	}
	keys := slices.Sorted(maps.Keys(params))
	for k := range runParams {
		if _, ok := params[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, inTask := params[k]
		rv, inRun := runParams[k]
		switch {
		case inTask && inRun && v == rv:
			continue
		case !inRun:
			diff = append(diff, fmt.Sprintf("param %q is not recorded on the run", k))
		case !inTask:
			diff = append(diff, fmt.Sprintf("param %q missing, recorded %q", k, rv))
		default:
			diff = append(diff, fmt.Sprintf("param %q is %q, recorded %q", k, v, rv))
		}
		if len(diff) == maxInputDiffs {
			return append(diff, "…")
		}
	}
	return diff
}
