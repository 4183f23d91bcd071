package bigquery

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pipelinehq/pipeline/steps"
)

// maxPart bounds each readable part of a job ID (BigQuery allows 1,024
// characters in all).
const maxPart = 120

// JobID is the job ID of one attempt: prefix, pipeline, step and run key
// for people to read, generation and attempt, and a hash of the prefix,
// steps.AttemptKey and the ledger's namespace that keeps IDs distinct where
// the readable parts had to be cut or had characters replaced, and between
// deployments (ledgers) sharing a project. It uses only letters, digits, _ and - and is at
// most 1,024 characters, as BigQuery requires. The same attempt always
// gets the same ID, so BigQuery refuses a second start of it.
func JobID(prefix string, in steps.Input) string {
	key := prefix + "\x00" + steps.AttemptKey(in)
	if in.Namespace != "" {
		key += "\x00" + in.Namespace // another ledger (deployment) gets other IDs
	}
	sum := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%s_%s_%s_%s_g%d_a%d_%s", idPart(prefix), idPart(in.Pipeline), idPart(in.Step), idPart(in.Key()),
		in.Generation, in.Attempt, hex.EncodeToString(sum[:8]))
}

// idPart keeps the job ID characters of s (others become _), cut to maxPart.
func idPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxPart {
			break
		}
		if isJobIDChar(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
