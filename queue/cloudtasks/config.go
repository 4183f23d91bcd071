package cloudtasks

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Config locates the queue and describes the HTTP tasks put on it.
type Config struct {
	// Project, Location and Queue name the queue:
	// projects/{Project}/locations/{Location}/queues/{Queue}.
	Project, Location, Queue string
	// ServiceURL is the service's base URL (SERVICE_URL). A task is delivered
	// to ServiceURL + task.Payload.Path(); a trailing slash on ServiceURL is
	// dropped when joining so that the path never starts with "//".
	ServiceURL string
	// ServiceAccount is the email of the service account whose OIDC token
	// Cloud Tasks attaches to each delivery (TASKS_SERVICE_ACCOUNT).
	ServiceAccount string
	// Audience is the OIDC token's audience (OIDC_AUDIENCE). Empty means
	// ServiceURL, exactly as given.
	Audience string
	// EmulatorHost is host:port of a Cloud Tasks emulator
	// (CLOUD_TASKS_EMULATOR_HOST): plain gRPC, no credentials.
	EmulatorHost string
}

// Compiled on first use, not at every start (a bounded repetition compiles
// to a large program).
var (
	// Resource IDs as Cloud Tasks accepts them.
	projectRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`) })
	locationRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`) })
	queueRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9-]{1,100}$`) })
)

// QueuePath is the queue's resource name.
func (c Config) QueuePath() string {
	return "projects/" + c.Project + "/locations/" + c.Location + "/queues/" + c.Queue
}

// audience is the OIDC audience tasks carry.
func (c Config) audience() string {
	if c.Audience != "" {
		return c.Audience
	}
	return c.ServiceURL
}

// Validate reports every problem with c at once; each wraps pipeline.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("cloudtasks: config: %w: "+format, append([]any{pipeline.ErrInvalid}, args...)...))
	}
	if !projectRE().MatchString(c.Project) {
		bad("project %q is not a Google Cloud project ID", c.Project)
	}
	if !locationRE().MatchString(c.Location) {
		bad("location %q is not a Cloud Tasks location such as europe-west1", c.Location)
	}
	if !queueRE().MatchString(c.Queue) {
		bad("queue %q must match %s", c.Queue, queueRE())
	}
	if err := checkURL(c.ServiceURL); err != nil {
		bad("service URL (SERVICE_URL) %q: %v", c.ServiceURL, err)
	}
	if c.ServiceAccount == "" {
		bad("service account (TASKS_SERVICE_ACCOUNT) is required: tasks carry its OIDC token")
	} else if a, err := mail.ParseAddress(c.ServiceAccount); err != nil || a.Address != c.ServiceAccount {
		bad("service account %q is not an email address", c.ServiceAccount)
	}
	if c.Audience != "" && strings.TrimSpace(c.Audience) != c.Audience {
		bad("audience %q has surrounding spaces", c.Audience)
	}
	if c.EmulatorHost != "" {
		if host, port, err := net.SplitHostPort(c.EmulatorHost); err != nil || host == "" || port == "" {
			bad("emulator host (CLOUD_TASKS_EMULATOR_HOST) %q is not host:port", c.EmulatorHost)
		}
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Host == "":
		return errors.New("no host")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	case u.User != nil:
		return errors.New("must not carry user info")
	}
	return nil
}
