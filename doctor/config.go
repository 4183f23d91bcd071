package doctor

import "time"

// Cloud limits the checks hold the configuration against.
const (
	// DefaultCloudRunTimeout is Cloud Run's request timeout when a service is
	// deployed without --timeout. The deploy scripts set 1800s.
	DefaultCloudRunTimeout = 300 * time.Second
	// MaxCloudRunTimeout is the longest request timeout Cloud Run allows.
	MaxCloudRunTimeout = 60 * time.Minute
	// DefaultService is the Cloud Run service name used in fix commands when
	// the service name (K_SERVICE) is unknown.
	DefaultService = "pipeline"
)

// Config is what the doctor knows about a deployment: the service's own
// environment plus facts about the cloud resources around it. Zero values
// mean unknown, and checks that need them are skipped.
type Config struct {
	// Backend is PIPELINE_BACKEND; the cloud checks run only for "gcp".
	Backend string
	// Auth is PIPELINE_AUTH ("on" or "off").
	Auth string
	// Project is GOOGLE_CLOUD_PROJECT.
	Project string
	// Region is the Cloud Run and Cloud Scheduler region; empty means TasksLocation.
	Region string
	// Service is the Cloud Run service name (K_SERVICE on Cloud Run). Scheduler
	// jobs are named Service + "-" + pipeline.
	Service string
	// ServiceURL is SERVICE_URL: where Cloud Tasks delivers steps.
	ServiceURL string
	// Audience is OIDC_AUDIENCE; empty means ServiceURL exactly.
	Audience string
	// TasksLocation and TasksQueue name the Cloud Tasks queue.
	TasksLocation, TasksQueue string
	// TasksAccount is TASKS_SERVICE_ACCOUNT, the identity in tasks' tokens.
	TasksAccount string
	// SchedulerAccount is SCHEDULER_SERVICE_ACCOUNT, the identity in Cloud
	// Scheduler's tokens.
	SchedulerAccount string
	// AllowedInvokers is ALLOWED_INVOKERS.
	AllowedInvokers []string
	// LeaseGrace is PIPELINE_LEASE_GRACE. A step's task deadline is its
	// timeout plus half of it (see pipeline.Orchestrator).
	LeaseGrace time.Duration
	// CloudRunTimeout is the service's request timeout (CLOUD_RUN_TIMEOUT);
	// zero means DefaultCloudRunTimeout.
	CloudRunTimeout time.Duration
	// QueueMaxAttempts is the queue's retry_config.max_attempts: 0 unknown,
	// -1 unlimited.
	QueueMaxAttempts int
	// SchedulerRetries is the Scheduler jobs' retry count; -1 unknown.
	SchedulerRetries int
	// DiscordWebhookURL is DISCORD_WEBHOOK_URL; empty means no Discord.
	DiscordWebhookURL string
	// RuntimeAccount is the service's own (runtime) service account, which
	// asynchronous steps call out as; empty means unknown.
	RuntimeAccount string
}

func (c Config) audience() string {
	if c.Audience != "" {
		return c.Audience
	}
	return c.ServiceURL
}

func (c Config) region() string {
	return orPlaceholder(firstNonEmpty(c.Region, c.TasksLocation), "REGION")
}

func (c Config) service() string { return firstNonEmpty(c.Service, DefaultService) }

func (c Config) project() string { return orPlaceholder(c.Project, "PROJECT") }

func (c Config) runTimeout() time.Duration {
	if c.CloudRunTimeout > 0 {
		return c.CloudRunTimeout
	}
	return DefaultCloudRunTimeout
}

// runUpdate is the start of a gcloud command updating the Cloud Run service.
func (c Config) runUpdate() string {
	return "gcloud run services update " + c.service() + " --project " + c.project() + " --region " + c.region()
}

// jobName is the Cloud Scheduler job of a pipeline.
func (c Config) jobName(pipeline string) string { return c.service() + "-" + pipeline }

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func orPlaceholder(v, placeholder string) string {
	if v == "" {
		return placeholder
	}
	return v
}
