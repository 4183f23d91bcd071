package discord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Keys of Run.Notes owned by this notifier.
const (
	// NoteLive holds the live message's ID, or "posting:<unix ns>" while an
	// instance posts it.
	NoteLive = "discord.live"
	// NoteFinal holds "posted:<final>" once the failure or completion embed of
	// the run's final state <final> (status@finished_at) is posted, or
	// "posting:<unix ns>|<final>" while an instance posts it. A run re-run by an
	// operator and finished again has a new <final> and is announced again.
	NoteFinal = "discord.final"
)

const (
	claimPrefix  = "posting:"
	postedPrefix = "posted:"
	casAttempts  = 8
)

// errClaimed says another instance is posting the message right now.
var errClaimed = errors.New("discord: another instance is posting this message")

// finalID names a run's final state, so that each finish is announced once.
func finalID(r pipeline.Run) string {
	return string(r.Status) + "@" + r.FinishedAt.UTC().Format(time.RFC3339Nano)
}

// notes reads and writes this notifier's keys of Run.Notes with the ledger's
// compare-and-swap, never dropping other keys.
type notes struct {
	store RunStore
	now   func() time.Time
	stale time.Duration
}

// set writes key=val on the run if cond holds for the current value,
// re-reading on conflicts. It returns the stored run and whether it wrote.
func (n *notes) set(ctx context.Context, r pipeline.Run, key, val string, cond func(cur string) bool) (pipeline.Run, bool, error) {
	for range casAttempts {
		if !cond(r.Notes[key]) {
			return r, false, nil
		}
		w := r
		w.Steps = nil
		w.Notes = maps.Clone(r.Notes)
		if w.Notes == nil {
			w.Notes = map[string]string{}
		}
		if val == "" {
			delete(w.Notes, key)
		} else {
			w.Notes[key] = val
		}
		stored, err := n.store.UpdateRun(ctx, w)
		if err == nil {
			stored.Steps = r.Steps
			return stored, true, nil
		}
		if !errors.Is(err, pipeline.ErrConflict) {
			return r, false, fmt.Errorf("discord: note %s of %s: %w", key, r.ID, err)
		}
		fresh, err := n.store.GetRun(ctx, r.ID)
		if err != nil {
			return r, false, fmt.Errorf("discord: note %s of %s: %w", key, r.ID, err)
		}
		r = fresh
	}
	return r, false, fmt.Errorf("discord: note %s of %s: %w: run record keeps changing", key, r.ID, pipeline.ErrConflict)
}

// claim marks key as being posted by us, unless it holds a value (done) or a
// fresh claim of someone else (errClaimed). It returns the claim token.
func (n *notes) claim(ctx context.Context, r pipeline.Run, key, suffix string, done func(cur string) bool) (pipeline.Run, string, error) {
	token := claimPrefix + strconv.FormatInt(n.now().UnixNano(), 10)
	if suffix != "" {
		token += "|" + suffix
	}
	var busy bool
	stored, wrote, err := n.set(ctx, r, key, token, func(cur string) bool {
		busy = false
		switch {
		case done(cur):
			return false
		case strings.HasPrefix(cur, claimPrefix) && !n.staleClaim(cur):
			busy = true
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return stored, "", err
	case busy:
		return stored, "", errClaimed
	case !wrote:
		return stored, "", nil // done already
	}
	return stored, token, nil
}

// stale reports whether claim c is older than the claim timeout.
func (n *notes) staleClaim(c string) bool {
	ts, _, _ := strings.Cut(strings.TrimPrefix(c, claimPrefix), "|")
	ns, err := strconv.ParseInt(ts, 10, 64)
	return err != nil || n.now().Sub(time.Unix(0, ns)) > n.stale
}

// finish replaces our claim with val (the message ID or the posted marker).
// Should another instance have taken the claim over meanwhile, its value wins.
func (n *notes) finish(ctx context.Context, r pipeline.Run, key, token, val string) (pipeline.Run, error) {
	stored, _, err := n.set(ctx, r, key, val, func(cur string) bool { return cur == token || cur == "" })
	return stored, err
}

// release drops our claim after a failed post, so a retry need not wait for
// it to go stale.
func (n *notes) release(ctx context.Context, r pipeline.Run, key, token string) {
	ctx, cancel := detachedTimeout(ctx)
	defer cancel()
	_, _, _ = n.set(ctx, r, key, "", func(cur string) bool { return cur == token })
}
