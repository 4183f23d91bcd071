package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// RunStore is what the notifier needs of the ledger: pipeline.Ledger satisfies it.
type RunStore interface {
	GetRun(ctx context.Context, runID string) (pipeline.Run, error)
	UpdateRun(ctx context.Context, r pipeline.Run) (pipeline.Run, error)
}

var _ RunStore = pipeline.Ledger(nil)

// The defaults of Config.MaxRetries and Config.OutageInterval: the service
// runs with them, and the reliability suite bounds the calls made during an
// outage by them.
const (
	DefaultMaxRetries     = 3
	DefaultOutageInterval = 30 * time.Second
)

// Config configures a Notifier. WebhookURL and Store are required.
type Config struct {
	// WebhookURL is DISCORD_WEBHOOK_URL, used as given (scheme, host and path),
	// so a proxy or a local stand-in receives the requests. Its path must end
	// in /api/webhooks/{id}/{token} (optionally /api/v{n}/webhooks/...).
	WebhookURL string
	// Mention is DISCORD_MENTION, pinged on failures only: "<@&ID>" or
	// "role:ID" or a bare ID is a role; "<@ID>", "<@!ID>" or "user:ID" a user.
	Mention string
	// Revision (K_REVISION) goes in the footer when set.
	Revision string
	// Project is the GCP project for the Cloud Logging link; no link without it.
	Project string
	// DashboardURL is PIPELINE_DASHBOARD_URL, the dashboard's address (e.g.
	// https://pipeline.example.com/ui/): messages link to the run's page
	// under it. No link without it.
	DashboardURL string
	// Store is the ledger, where the live message ID and the final-post marker
	// are kept in Run.Notes.
	Store  RunStore
	Logger *slog.Logger
	// HTTPClient's transport is wrapped to reach WebhookURL's host. Default: a
	// client on http.DefaultTransport.
	HTTPClient *http.Client
	// MaxRetries bounds the retries of one Discord request (5xx, 429,
	// timeouts). Default DefaultMaxRetries (3).
	MaxRetries int
	// AttemptTimeout bounds one HTTP request. Default 3 s.
	AttemptTimeout time.Duration
	// FinalBudget bounds a final event's Notify (the orchestrator gives 5 s).
	// Default 4 s.
	FinalBudget time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a request
	// and between the worker's catch-up attempts. Defaults 250 ms and 1 min.
	MinBackoff, MaxBackoff time.Duration
	// EditInterval is the least time between two edits of one run's live
	// message; events in between coalesce. Default 1 s.
	EditInterval time.Duration
	// ClaimTimeout is when another instance's unfinished post claim is taken
	// to be dead and may be taken over. Default 30 s.
	ClaimTimeout time.Duration
	// OutageInterval is, while Discord is failing, the least time between two
	// calls for one run (live message and final notification together),
	// however many callers ask. Default DefaultOutageInterval (30 s).
	OutageInterval time.Duration
	// Username overrides the webhook's name on posts, if set.
	Username string
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// webhook is a parsed DISCORD_WEBHOOK_URL.
type webhook struct {
	url   *url.URL // as configured, the target of every request
	id    string
	token string
}

// Compiled on first use, not at every start (a bounded repetition compiles
// to a large program).
var (
	webhookPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`/api/(?:v[0-9]+/)?webhooks/([^/]+)/([^/]+)$`) })
	snowflakeRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{1,20}$`) })
	tokenRE       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`) })
)

func parseWebhook(raw string) (webhook, []error) {
	var errs []error
	if raw == "" {
		return webhook{}, []error{errors.New("webhook URL is required")}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return webhook{}, []error{fmt.Errorf("webhook URL does not parse: %w", err)}
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		errs = append(errs, fmt.Errorf("webhook URL scheme %q must be https or http", u.Scheme))
	}
	if u.Host == "" {
		errs = append(errs, errors.New("webhook URL has no host"))
	}
	if u.User != nil {
		errs = append(errs, errors.New("webhook URL must not carry user info"))
	}
	m := webhookPathRE().FindStringSubmatch(strings.TrimSuffix(u.Path, "/"))
	if m == nil {
		errs = append(errs, fmt.Errorf("webhook URL path %q must end in /api/webhooks/{id}/{token}", redactPath(u.Path)))
		return webhook{}, errs
	}
	if !snowflakeRE().MatchString(m[1]) {
		errs = append(errs, fmt.Errorf("webhook id %q must be a numeric snowflake", m[1]))
	}
	if !tokenRE().MatchString(m[2]) {
		errs = append(errs, errors.New("webhook token must be 1..200 of [A-Za-z0-9_.-]"))
	}
	if len(errs) > 0 {
		return webhook{}, errs
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	u.Fragment = ""
	return webhook{url: u, id: m[1], token: m[2]}, nil
}

// redactPath hides a token in an error message.
func redactPath(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 && len(p)-i > 12 {
		return p[:i] + "/…"
	}
	return p
}

// mention is the one ID a failure embed may ping.
type mention struct {
	id   string
	role bool
}

func (m mention) content() string {
	if m.id == "" {
		return ""
	}
	if m.role {
		return "<@&" + m.id + ">"
	}
	return "<@" + m.id + ">"
}

func parseMention(s string) (mention, error) {
	s = strings.TrimSpace(s)
	var m mention
	switch {
	case s == "":
		return m, nil
	case strings.HasPrefix(s, "<@&") && strings.HasSuffix(s, ">"):
		m = mention{id: s[3 : len(s)-1], role: true}
	case strings.HasPrefix(s, "<@!") && strings.HasSuffix(s, ">"):
		m = mention{id: s[3 : len(s)-1]}
	case strings.HasPrefix(s, "<@") && strings.HasSuffix(s, ">"):
		m = mention{id: s[2 : len(s)-1]}
	case strings.HasPrefix(s, "role:"):
		m = mention{id: s[len("role:"):], role: true}
	case strings.HasPrefix(s, "user:"):
		m = mention{id: s[len("user:"):]}
	default:
		m = mention{id: s, role: true} // a bare ID is a role: on-call pings are usually roles
	}
	if !snowflakeRE().MatchString(m.id) {
		return mention{}, fmt.Errorf("mention %q must be <@&ID>, <@ID>, role:ID, user:ID or a bare numeric ID", s)
	}
	return m, nil
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 3 * time.Second
	}
	if c.FinalBudget == 0 {
		c.FinalBudget = 4 * time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 250 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Minute
	}
	if c.EditInterval == 0 {
		c.EditInterval = time.Second
	}
	if c.ClaimTimeout == 0 {
		c.ClaimTimeout = 30 * time.Second
	}
	if c.OutageInterval == 0 {
		c.OutageInterval = DefaultOutageInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}
