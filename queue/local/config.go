package local

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.etcd.io/bbolt"
)

// Defaults of Config, modelled on Cloud Tasks where it has one.
const (
	DefaultQueueName = "local"
	// DefaultConcurrency bounds deliveries in flight. Cloud Tasks allows
	// 1000 by default; 100 keeps one machine's handlers bounded while leaving
	// enough writers in flight for the group commit to share its fsyncs (at
	// 16, 50 concurrent chains queued behind the cap: see
	// docs/performance.md).
	DefaultConcurrency     = 100
	DefaultMinBackoff      = 100 * time.Millisecond
	DefaultMaxBackoff      = 30 * time.Second
	DefaultMaxAttempts     = 100
	DefaultDedupWindow     = 24 * time.Hour
	DefaultDeadline        = 10 * time.Minute
	MaxDeadline            = 30 * time.Minute
	DefaultShutdownTimeout = 5 * time.Second
	// MaxRetryAfter caps how long a Retry-After header may postpone a task.
	MaxRetryAfter = time.Hour
	// MaxTaskSize is Cloud Tasks' limit on a task (name plus body).
	MaxTaskSize = 100 * 1024
)

// Config configures a Queue. Zero fields take the defaults above.
type Config struct {
	// BaseURL is where tasks go: BaseURL + Payload.Path(), e.g.
	// http://127.0.0.1:8080. It may be set later with SetBaseURL.
	BaseURL string
	// QueueName is sent as X-CloudTasks-QueueName.
	QueueName string
	// Concurrency caps the deliveries in flight.
	Concurrency int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries: MinBackoff doubles with every failed delivery up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is how many deliveries of a task may fail before it is
	// moved to the dead-letter bucket.
	MaxAttempts int
	// DedupWindow is how long a task name is refused after the task
	// finished (it is refused while pending too).
	DedupWindow time.Duration
	// ShutdownTimeout bounds how long Run waits for deliveries in flight once
	// its context is cancelled; then they are cancelled and stay pending.
	ShutdownTimeout time.Duration
	// Token, when set, mints the bearer token sent with every delivery.
	Token func(ctx context.Context, audience string) (string, error)
	// Audience is passed to Token; it defaults to the base URL.
	Audience string
	// Client sends the deliveries. The default keeps Concurrency idle
	// connections per host.
	Client *http.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Commit runs a write in a committed transaction; it may run fn more than
	// once. The default is a group commit on the queue's database that does
	// not wait when idle. db.Batch works too, as does a group committer
	// shared with the ledger (fewer fsyncs when both write at once).
	Commit func(fn func(*bbolt.Tx) error) error
}

func (c Config) withDefaults() (Config, error) {
	if c.QueueName == "" {
		c.QueueName = DefaultQueueName
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	switch {
	case c.Concurrency < 0:
		return c, fmt.Errorf("local queue: concurrency %d is negative", c.Concurrency)
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return c, fmt.Errorf("local queue: backoff %s..%s is not a range", c.MinBackoff, c.MaxBackoff)
	case c.MaxAttempts < 0:
		return c, fmt.Errorf("local queue: max attempts %d is negative", c.MaxAttempts)
	case c.DedupWindow < 0 || c.ShutdownTimeout < 0:
		return c, fmt.Errorf("local queue: negative dedup window or shutdown timeout")
	}
	if c.Client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Keep-alive for every delivery in flight: a new connection per
		// delivery would cost a handshake and a TIME_WAIT socket.
		t.MaxIdleConnsPerHost = c.Concurrency
		t.MaxIdleConns = max(t.MaxIdleConns, c.Concurrency)
		c.Client = &http.Client{
			Transport: t,
			// Like Cloud Tasks, a redirect is an answer, not a success.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
