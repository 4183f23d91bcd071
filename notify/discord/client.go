package discord

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
)

// limiter holds every request back until Discord's retry_after has passed.
type limiter struct {
	mu    sync.Mutex
	until time.Time
	now   func() time.Time
}

func (l *limiter) hold(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.now().Add(d); t.After(l.until) {
		l.until = t
	}
}

// wait blocks until requests may go, or fails at once if that is after ctx's
// deadline: a notification never waits longer than its budget.
func (l *limiter) wait(ctx context.Context) error {
	l.mu.Lock()
	d := l.until.Sub(l.now())
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return fmt.Errorf("%w for %s more, past the deadline", errRateLimited, d.Round(time.Millisecond))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ready is when the limiter lets requests go again.
func (l *limiter) ready() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

var (
	errRateLimited = errors.New("discord: rate limited")
	// errNotFound is Discord's 404: the message (or the webhook) is gone.
	errNotFound = errors.New("discord: not found")
)

// permanentError is a 4xx answer: retrying the same request will not help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// client makes bounded, retried webhook requests through discordgo.
type client struct {
	hook     webhook
	http     *http.Client
	limiter  *limiter
	retries  int
	attempt  time.Duration
	minBack  time.Duration
	maxBack  time.Duration
	username string
	outage   *outage
}

// session is a fresh discordgo session for one request: discordgo's rate
// limiter holds a per-endpoint lock for the length of a request and sleeps
// without a context, so sessions are not shared; our limiter paces instead.
func (c *client) session() (*discordgo.Session, error) {
	s, err := discordgo.New("")
	if err != nil {
		return nil, fmt.Errorf("discord: session: %w", err)
	}
	s.Client = c.http
	s.MaxRestRetries = 0
	s.ShouldRetryOnRateLimit = false
	return s, nil
}

// post sends a new message for run and returns its ID.
func (c *client) post(ctx context.Context, run string, p *discordgo.WebhookParams) (string, error) {
	p.Username = c.username
	var id string
	err := c.do(ctx, run, "post", func(ctx context.Context, s *discordgo.Session) error {
		m, err := s.WebhookExecute(c.hook.id, c.hook.token, true, p, discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
		if err != nil {
			return err
		}
		if m == nil || m.ID == "" {
			return &permanentError{errors.New("discord: webhook answered without a message id")}
		}
		id = m.ID
		return nil
	})
	return id, err
}

// edit replaces the embeds of message msgID of run.
func (c *client) edit(ctx context.Context, run, msgID string, e *discordgo.WebhookEdit) error {
	return c.do(ctx, run, "edit", func(ctx context.Context, s *discordgo.Session) error {
		_, err := s.WebhookMessageEdit(c.hook.id, c.hook.token, msgID, e, discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
		return err
	})
}

// do runs op for run up to 1+retries times: 429s wait for retry_after, 5xx
// and transport errors back off, 4xx fail at once. During an outage it makes
// one attempt, and none while the run's next call is not due (see outage).
// It never outlives ctx.
func (c *client) do(ctx context.Context, run, what string, op func(context.Context, *discordgo.Session) error) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	retries := c.outage.retries(c.retries)
	var last error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 && !errors.Is(last, errRateLimited) {
			if err := sleep(ctx, c.backoff(attempt)); err != nil {
				return fmt.Errorf("discord: %s: %w (last error: %w)", what, err, last)
			}
		}
		if err := c.limiter.wait(ctx); err != nil {
			if last == nil {
				last = err
			}
			return fmt.Errorf("discord: %s: %w", what, last)
		}
		if err := c.outage.allow(run); err != nil {
			if last == nil {
				last = err
			}
			return fmt.Errorf("discord: %s: %w", what, last)
		}
		actx, cancel := context.WithTimeout(ctx, c.attempt)
		err := op(actx, s)
		cancel()
		if err == nil {
			c.outage.answered()
			return nil
		}
		last = classify(err)
		var perm *permanentError
		if errors.As(last, &perm) || errors.Is(last, errNotFound) {
			c.outage.answered() // Discord answered: it is up
			return fmt.Errorf("discord: %s: %w", what, last)
		}
		if errors.Is(last, errRateLimited) {
			// A 429 is an answer too: the outage is over, and the wait
			// is Retry-After's (the limiter's), not the outage's interval.
			c.outage.answered()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("discord: %s: %w (last error: %w)", what, ctx.Err(), last)
		}
	}
	if !errors.Is(last, errRateLimited) {
		c.outage.failed(run)
	}
	return fmt.Errorf("discord: %s: giving up after %d attempts: %w", what, retries+1, last)
}

// classify maps discordgo's errors onto ours.
func classify(err error) error {
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) {
		return fmt.Errorf("%w: retry after %s", errRateLimited, rl.RetryAfter)
	}
	var rest *discordgo.RESTError
	if errors.As(err, &rest) && rest.Response != nil {
		code := rest.Response.StatusCode
		switch {
		case code == http.StatusNotFound:
			return fmt.Errorf("%w: %w", errNotFound, err)
		case code >= 400 && code < 500 && code != http.StatusRequestTimeout:
			return &permanentError{err}
		}
	}
	return err
}

func (c *client) backoff(attempt int) time.Duration {
	d := c.minBack << min(attempt-1, 16)
	if d > c.maxBack || d <= 0 {
		d = c.maxBack
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
