package emulator

import (
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Config configures an emulator. The zero value is usable; string and number
// fields map directly onto command-line flags.
type Config struct {
	// Addr is the gRPC listen address, host:port; default 127.0.0.1:0.
	Addr string
	// IssuerAddr is the OIDC issuer's HTTP listen address; default 127.0.0.1:0.
	IssuerAddr string
	// IssuerURL overrides the issuer URL put in tokens and discovery (for
	// example when the issuer is reached through a proxy or container
	// network). Default http://<issuer listen address>.
	IssuerURL string
	// MaxAttempts is how many times a task is dispatched before it is dropped;
	// default 100, -1 for unlimited (as in Cloud Tasks' RetryConfig).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the retry delay, which doubles per
	// attempt; defaults 100 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// MaxConcurrent is how many dispatches may be in flight at once, over all
	// queues; default 100.
	MaxConcurrent int
	// ReuseWindow is how long a task's name stays taken after the task
	// succeeded, was dropped or was deleted. 0 means for the emulator's life;
	// negative means names free up at once. Cloud Tasks: up to 24 h.
	ReuseWindow time.Duration
	// SigningKey signs the OIDC tokens; a 2048-bit key is generated when nil.
	SigningKey *rsa.PrivateKey
	// HTTPClient dispatches tasks; default a client that does not follow
	// redirects (a 3xx counts as a failed attempt, as in Cloud Tasks).
	HTTPClient *http.Client
	// Logger receives one debug line per attempt and warnings; default discards.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxAttempts   = 100
	DefaultMinBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff    = 10 * time.Second
	DefaultMaxConcurrent = 100
	defaultAddr          = "127.0.0.1:0"
)

// withDefaults fills the unset fields of c and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.IssuerAddr == "" {
		c.IssuerAddr = defaultAddr
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.MaxAttempts < -1:
		return c, fmt.Errorf("emulator: config: max attempts %d: want -1 (unlimited) or more than 0", c.MaxAttempts)
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return c, fmt.Errorf("emulator: config: backoff %s..%s is not a range", c.MinBackoff, c.MaxBackoff)
	case c.MaxConcurrent < 0:
		return c, fmt.Errorf("emulator: config: max concurrent %d is negative", c.MaxConcurrent)
	}
	return c, nil
}
