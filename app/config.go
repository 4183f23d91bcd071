package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Config is the service configuration: environment variables (Cloud Run
// style) with flags mirroring them.
type Config struct {
	File       []string `name:"file" short:"f" env:"PIPELINE_FILE" default:"pipelines" sep:"," group:"config" help:"Pipeline files or directories of *.yaml (comma list)."`
	Backend    string   `name:"backend" env:"PIPELINE_BACKEND" default:"local" group:"config" help:"local (embedded store, local queue and cron) or gcp (Cloud Tasks, Firestore)."`
	Data       string   `name:"data" env:"PIPELINE_DATA" default:"data" group:"config" help:"Directory of the embedded store and the example steps' files (local backend)."`
	Auth       string   `name:"auth" env:"PIPELINE_AUTH" default:"on" group:"config" help:"on: every route but /healthz needs a verified OIDC token. off: no checks (local development only)."`
	LogLevel   string   `name:"log-level" env:"LOG_LEVEL" default:"info" group:"config" help:"debug, info, warn or error."`
	LeaseGrace Duration `name:"lease-grace" env:"PIPELINE_LEASE_GRACE" default:"30s" group:"config" help:"Added to a step's timeout to form its lease; after it a crashed attempt is taken over."`
	Project    string   `name:"project" env:"GOOGLE_CLOUD_PROJECT" group:"gcp" help:"Google Cloud project (log trace links; gcp backend)."`

	// gcp backend.
	ServiceURL       string   `name:"service-url" env:"SERVICE_URL" group:"gcp" help:"The service's URL, as Cloud Tasks should call it (gcp)."`
	TasksLocation    string   `name:"tasks-location" env:"CLOUD_TASKS_LOCATION" group:"gcp" help:"Cloud Tasks queue location, e.g. europe-west1 (gcp)."`
	TasksQueue       string   `name:"tasks-queue" env:"CLOUD_TASKS_QUEUE" default:"pipeline" group:"gcp" help:"Cloud Tasks queue name (gcp)."`
	TasksAccount     string   `name:"tasks-service-account" env:"TASKS_SERVICE_ACCOUNT" group:"gcp" help:"Service account whose OIDC token Cloud Tasks attaches (gcp)."`
	TasksEmulator    string   `name:"tasks-emulator" env:"CLOUD_TASKS_EMULATOR_HOST" group:"gcp" help:"host:port of a Cloud Tasks v2 emulator (plain gRPC)."`
	Audience         string   `name:"audience" env:"OIDC_AUDIENCE" group:"gcp" help:"Expected token audience; default SERVICE_URL exactly (gcp)."`
	Issuer           string   `name:"issuer" env:"OIDC_ISSUER" group:"gcp" help:"Token issuer found by OIDC discovery; default Google (gcp)."`
	AllowedInvokers  []string `name:"allowed-invokers" env:"ALLOWED_INVOKERS" sep:"," group:"gcp" help:"Caller emails allowed to call the service (gcp)."`
	AllowedOperators []string `name:"allowed-operators" env:"ALLOWED_OPERATORS" sep:"," group:"gcp" help:"Operator emails allowed to enqueue, resume, cancel, backfill and read stats (gcp)."`
	AllowedViewers   []string `name:"allowed-viewers" env:"ALLOWED_VIEWERS" sep:"," group:"gcp" help:"Emails allowed to read the dashboard (/ui/); operators may read and act there too. Empty: only operators."`
	IAPAudience      string   `name:"iap-audience" env:"IAP_AUDIENCE" group:"gcp" help:"When the service sits behind Identity-Aware Proxy: the audience of its signed header (/projects/NUMBER/global/backendServices/ID). The dashboard then authenticates by X-Goog-IAP-JWT-Assertion only. Empty: off."`
	IAPKeysURL       string   `name:"iap-keys-url" env:"IAP_KEYS_URL" hidden:"" group:"gcp" help:"IAP's key set (default Google's; tests point it at a stand-in)."`
	DashboardURL     string   `name:"dashboard-url" env:"PIPELINE_DASHBOARD_URL" group:"gcp" help:"Public URL of the dashboard (e.g. https://SERVICE/ui/); Discord messages link each run's page under it."`
	DiscordWebhook   string   `name:"discord-webhook-url" env:"DISCORD_WEBHOOK_URL" group:"gcp" help:"Discord webhook the run messages go to, used as given (host included); without it notifications go to the log."`
	DiscordMention   string   `name:"discord-mention" env:"DISCORD_MENTION" group:"gcp" help:"Role (or user:ID) pinged on failures only."`
	Revision         string   `name:"revision" env:"K_REVISION" group:"gcp" help:"Service revision shown in the Discord footer (Cloud Run sets K_REVISION)."`
	FirestoreDB      string   `name:"firestore-database" env:"FIRESTORE_DATABASE" default:"(default)" group:"gcp" help:"Firestore database (gcp)."`
	LedgerCollection string   `name:"ledger-collection" env:"LEDGER_COLLECTION" default:"pipeline_runs" group:"gcp" help:"Firestore collection of the run ledger (gcp)."`

	// firestoreEmulator is FIRESTORE_EMULATOR_HOST, which the Firestore
	// client reads from the environment itself.
	firestoreEmulator string `kong:"-"`

	// stepSets register the step kinds beyond the built-in ones (Option WithSteps).
	stepSets []func(*steps.Registry, *Config) `kong:"-"`
	// wrap decorates the ledger, queue and notifier (Option WithWrappers).
	wrap Wrappers `kong:"-"`
	// clock is the service's clock (Option WithClock); nil: time.Now.
	clock func() time.Time `kong:"-"`
}

// Validate lists every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.File) == 0 {
		bad("PIPELINE_FILE: no pipeline file given")
	}
	switch c.Backend {
	case "local":
		if c.Data == "" {
			bad("PIPELINE_DATA: empty; the local backend needs a directory")
		}
	case "gcp":
		if c.ServiceURL == "" {
			bad("SERVICE_URL: required with PIPELINE_BACKEND=gcp (the URL Cloud Tasks calls)")
		} else if u, err := url.Parse(c.ServiceURL); err != nil || u.Scheme == "" || u.Host == "" {
			bad("SERVICE_URL: %q is not an absolute URL", c.ServiceURL)
		}
		if c.Project == "" {
			bad("GOOGLE_CLOUD_PROJECT: required with PIPELINE_BACKEND=gcp")
		}
		if c.TasksLocation == "" {
			bad("CLOUD_TASKS_LOCATION: required with PIPELINE_BACKEND=gcp")
		}
		if c.TasksQueue == "" {
			bad("CLOUD_TASKS_QUEUE: required with PIPELINE_BACKEND=gcp")
		}
		if c.TasksAccount == "" {
			bad("TASKS_SERVICE_ACCOUNT: required with PIPELINE_BACKEND=gcp (the identity in the tasks' OIDC tokens)")
		}
		if c.Auth == "on" && len(c.AllowedInvokers) == 0 {
			bad("ALLOWED_INVOKERS: empty, so every caller would be refused; list the Scheduler and Cloud Tasks service accounts")
		}
	default:
		bad("PIPELINE_BACKEND: %q is not local or gcp", c.Backend)
	}
	switch c.Auth {
	case "on":
	case "off":
		if c.Backend == "gcp" && !c.emulated() {
			bad("PIPELINE_AUTH: off is only allowed with PIPELINE_BACKEND=local, or on the gcp backend against emulators (both CLOUD_TASKS_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST set)")
		}
	default:
		bad("PIPELINE_AUTH: %q is not on or off", c.Auth)
	}
	if c.IAPAudience != "" && c.Auth == "off" {
		bad("IAP_AUDIENCE: set, but PIPELINE_AUTH=off checks nothing; turn auth on or unset IAP_AUDIENCE")
	}
	if c.DashboardURL != "" {
		if u, err := url.Parse(c.DashboardURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("PIPELINE_DASHBOARD_URL: %q is not an http(s) URL", c.DashboardURL)
		}
	}
	if c.LeaseGrace.err != nil {
		bad("PIPELINE_LEASE_GRACE: %q is not a duration (e.g. 30s, 2m)", c.LeaseGrace.text)
	} else if c.LeaseGrace.Duration <= 0 {
		bad("PIPELINE_LEASE_GRACE: %s must be positive", c.LeaseGrace.Duration)
	}
	if _, err := c.level(); err != nil {
		bad("LOG_LEVEL: %v", err)
	}
	return errors.Join(errs...)
}

func (c *Config) level() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(strings.ToUpper(c.LogLevel)))
	return l, err
}

// emulated reports whether the gcp backend talks to emulators only (both
// CLOUD_TASKS_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST set).
func (c *Config) emulated() bool { return c.TasksEmulator != "" && c.firestoreEmulator != "" }

// audience is the expected OIDC audience: OIDC_AUDIENCE, else SERVICE_URL exactly.
func (c *Config) audience() string {
	if c.Audience != "" {
		return c.Audience
	}
	return c.ServiceURL
}
