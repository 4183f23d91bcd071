package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Notifier posts and edits a run's Discord messages. Create it with New, pass
// it to the orchestrator as its Notifier and run Run in the background.
type Notifier struct {
	cfg     Config
	mention mention
	client  *client
	notes   notes
	log     *slog.Logger

	mu       sync.Mutex
	dirty    map[string]*pending  // runs whose live message is behind the ledger
	lastSync map[string]time.Time // when each run's live message was last synced
	wake     chan struct{}
}

// pending is a run waiting for the worker.
type pending struct {
	due      time.Time
	failures int  // consecutive failed syncs, for backoff
	taken    bool // the worker is syncing it
	again    bool // marked dirty while taken
}

var _ pipeline.Notifier = (*Notifier)(nil)

// New checks cfg (listing every problem) and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	cfg.defaults()
	hook, errs := parseWebhook(cfg.WebhookURL)
	m, err := parseMention(cfg.Mention)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("a run store (the ledger) is required"))
	}
	if cfg.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("max retries %d must be >= 0", cfg.MaxRetries))
	}
	if cfg.AttemptTimeout < 0 || cfg.FinalBudget < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < cfg.MinBackoff || cfg.EditInterval < 0 || cfg.ClaimTimeout < 0 || cfg.OutageInterval < 0 {
		errs = append(errs, errors.New("timeouts and backoffs must be positive, with max backoff >= min backoff"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("discord: %w", errors.Join(errs...))
	}
	lim := &limiter{now: cfg.Now}
	base := cfg.HTTPClient.Transport
	if base == nil {
		base = defaultTransport()
	}
	hc := *cfg.HTTPClient
	hc.Transport = &transport{base: base, hook: hook, limiter: lim}
	return &Notifier{
		cfg:     cfg,
		mention: m,
		client: &client{
			hook: hook, http: &hc, limiter: lim, retries: cfg.MaxRetries, attempt: cfg.AttemptTimeout,
			minBack: cfg.MinBackoff, maxBack: cfg.MaxBackoff, username: cfg.Username,
			outage: newOutage(cfg.Now, cfg.OutageInterval),
		},
		notes:    notes{store: cfg.Store, now: cfg.Now, stale: cfg.ClaimTimeout},
		log:      cfg.Logger.With("notifier", "discord"),
		dirty:    map[string]*pending{},
		lastSync: map[string]time.Time{},
		wake:     make(chan struct{}, 1),
	}, nil
}

// Notify handles a committed event. Step events and the run's start only
// mark the run for the worker and return nil at once. Final events (run
// succeeded, failed or cancelled) bring the live message to its final state
// and post the failure or completion embed, within the final budget; an error
// means the notification is still owed and should be sent again, which posts
// nothing twice.
func (n *Notifier) Notify(ctx context.Context, e pipeline.Event) error {
	if e.Schedule != nil {
		return n.scheduleAlert(ctx, e)
	}
	if e.Run.ID == "" {
		return fmt.Errorf("discord: %s event without a run id", e.Kind)
	}
	switch e.Kind {
	case pipeline.EventRunSucceeded, pipeline.EventRunFailed, pipeline.EventRunCancelled:
		return n.final(ctx, e.Run.ID)
	}
	n.markDirty(e.Run.ID)
	return nil
}

// final announces the end of a run: the live message shows its final state
// and the failure or completion embed is posted once per finish.
func (n *Notifier) final(ctx context.Context, runID string) error {
	if err := n.client.outage.allowed(runID); err != nil {
		// Discord is down and this run had its call: still owed, and no
		// ledger reads or claims for a call that would not go.
		return fmt.Errorf("discord: final notification of %s: %w", runID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.FinalBudget)
	defer cancel()
	r, err := n.cfg.Store.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("discord: final notification of %s: %w", runID, err)
	}
	if !r.Status.Terminal() {
		// Re-run since it finished: the live message follows the run.
		n.markDirty(runID)
		return nil
	}
	r, liveErr := n.syncLive(ctx, r)
	if liveErr != nil {
		n.markDirty(runID)
	}
	finalErr := n.postFinal(ctx, r)
	if err := errors.Join(liveErr, finalErr); err != nil {
		return fmt.Errorf("discord: final notification of %s (%s): %w", runID, r.Status, err)
	}
	n.log.InfoContext(ctx, "final notification sent", "run", runID, "status", string(r.Status))
	return nil
}

// syncLive makes the run's live message show r, posting it when it does not
// exist yet (or was deleted) under a claim in the ledger.
func (n *Notifier) syncLive(ctx context.Context, r pipeline.Run) (pipeline.Run, error) {
	isID := func(cur string) bool { return cur != "" && !strings.HasPrefix(cur, claimPrefix) }
	for range 3 {
		id := r.Notes[NoteLive]
		if !isID(id) {
			claimed, token, err := n.notes.claim(ctx, r, NoteLive, "", isID)
			if err != nil {
				return claimed, err
			}
			r = claimed
			if token == "" {
				continue // posted by someone else meanwhile: edit theirs
			}
			msgID, err := n.client.post(ctx, r.ID, &discordgo.WebhookParams{
				Embeds:          []*discordgo.MessageEmbed{Render(r, n.cfg.Revision)},
				AllowedMentions: noMentions(),
			})
			if err != nil {
				n.notes.release(ctx, r, NoteLive, token)
				return r, fmt.Errorf("post live message: %w", err)
			}
			rctx, cancel := detachedTimeout(ctx)
			defer cancel()
			return n.notes.finish(rctx, r, NoteLive, token, msgID)
		}
		embeds := []*discordgo.MessageEmbed{Render(r, n.cfg.Revision)}
		err := n.client.edit(ctx, r.ID, id, &discordgo.WebhookEdit{Embeds: &embeds, AllowedMentions: noMentions()})
		if !errors.Is(err, errNotFound) {
			if err != nil {
				return r, fmt.Errorf("edit live message: %w", err)
			}
			return r, nil
		}
		// Someone deleted the message: post a new one.
		n.log.WarnContext(ctx, "live message is gone; posting a new one", "run", r.ID, "message", id)
		var cerr error
		if r, _, cerr = n.notes.set(ctx, r, NoteLive, "", func(cur string) bool { return cur == id }); cerr != nil {
			return r, cerr
		}
	}
	return r, fmt.Errorf("discord: live message of %s keeps changing", r.ID)
}

// postFinal posts the failure or completion embed of r's finish, once.
func (n *Notifier) postFinal(ctx context.Context, r pipeline.Run) error {
	fid := finalID(r)
	done := func(cur string) bool { return cur == postedPrefix+fid }
	if done(r.Notes[NoteFinal]) {
		return nil
	}
	r, token, err := n.notes.claim(ctx, r, NoteFinal, fid, done)
	if err != nil || token == "" {
		return err
	}
	if _, err := n.client.post(ctx, r.ID, n.finalMessage(r)); err != nil {
		n.notes.release(ctx, r, NoteFinal, token)
		return fmt.Errorf("post %s embed: %w", r.Status, err)
	}
	rctx, cancel := detachedTimeout(ctx)
	defer cancel()
	_, err = n.notes.finish(rctx, r, NoteFinal, token, postedPrefix+fid)
	return err
}

// finalMessage is the failure embed (with the mention, the only one allowed)
// or the completion embed (mentioning no one).
func (n *Notifier) finalMessage(r pipeline.Run) *discordgo.WebhookParams {
	if r.Status != pipeline.RunFailed {
		return &discordgo.WebhookParams{
			Embeds:          []*discordgo.MessageEmbed{completionEmbed(r, n.cfg.Revision)},
			AllowedMentions: noMentions(),
		}
	}
	am := noMentions()
	if n.mention.id != "" {
		if n.mention.role {
			am.Roles = []string{n.mention.id}
		} else {
			am.Users = []string{n.mention.id}
		}
	}
	return &discordgo.WebhookParams{
		Content:         n.mention.content(),
		Embeds:          []*discordgo.MessageEmbed{failureEmbed(r, n.cfg.Revision, n.cfg.Project)},
		AllowedMentions: am,
	}
}

// noMentions lets no text in a message ping anyone (parse is [] not null).
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// recordTimeout bounds writing a note after a post: the post happened, so
// recording it matters more than the caller's remaining budget.
const recordTimeout = 2 * time.Second

func detachedTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}
