# Inputs. Every resource is named "pipeline-<stage>" (plus a suffix), so dev
# and prod can share a project.

variable "project" {
  description = "Google Cloud project ID."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run service, the Cloud Tasks queue and the Scheduler jobs."
  type        = string
  default     = "europe-west1"
}

variable "stage" {
  description = "dev or prod: names every resource pipeline-<stage>."
  type        = string
  default     = "dev"
  validation {
    condition     = contains(["dev", "prod"], var.stage)
    error_message = "The stage must be dev or prod."
  }
}

variable "image" {
  description = "Container image of the first deploy; later deploys change it with gcloud run deploy (Terraform ignores it)."
  type        = string
}

variable "pipeline_dir" {
  description = "Directory of the pipeline files (*.yaml, one pipeline per file): the Scheduler jobs are generated from them."
  type        = string
  default     = "../../pipelines"
}

variable "firestore_location" {
  description = "Firestore location (a region or a multi-region such as eur3); default the region."
  type        = string
  default     = ""
}

variable "ledger_collection" {
  description = "Firestore collection of the run ledger (LEDGER_COLLECTION)."
  type        = string
  default     = "pipeline_runs"
}

variable "request_timeout_seconds" {
  description = "Cloud Run request timeout; must exceed every step's timeout plus half the lease grace (pipeline doctor checks)."
  type        = number
  default     = 1800
}

variable "queue_max_attempts" {
  description = "Cloud Tasks max attempts per task; must be above every step's max_attempts (the handler counts attempts)."
  type        = number
  default     = 25
}

variable "scheduler_retries" {
  description = "Cloud Scheduler retries of a failed start (starts are idempotent)."
  type        = number
  default     = 3
}

variable "reconcile_schedule" {
  description = "Schedule of the reconcile tick (POST /pipeline/reconcile)."
  type        = string
  default     = "*/5 * * * *"
}

variable "allowed_operators" {
  description = "ALLOWED_OPERATORS: emails of the people (or service accounts) who may call the operator routes (enqueue, resume, cancel, backfill, stats); each also gets run.invoker on the service. Empty: the operator routes are closed."
  type        = list(string)
  default     = []
}

variable "allowed_viewers" {
  description = "ALLOWED_VIEWERS: emails of the people (or service accounts) who may read the dashboard and the read-only routes (status, stats); each also gets run.invoker on the service. Operators read too. Empty: only operators read."
  type        = list(string)
  default     = []
}

variable "iap_audience" {
  description = "IAP_AUDIENCE: when the service sits behind Identity-Aware Proxy, the audience of its signed headers (/projects/NUMBER/global/backendServices/ID); every dashboard request must then carry a valid X-Goog-IAP-JWT-Assertion (the API routes keep their OIDC tokens). Empty: IAP is not checked."
  type        = string
  default     = ""
}

variable "discord_webhook_url" {
  description = "Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN), stored in Secret Manager; empty: no Discord."
  type        = string
  default     = ""
  sensitive   = true
}

variable "discord_mention" {
  description = "DISCORD_MENTION: role or user pinged on failures (e.g. role:123)."
  type        = string
  default     = ""
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/ID) told when the sweeper stops ticking; empty: the alert shows in the console only."
  type        = list(string)
  default     = []
}

# Asynchronous steps (docs/async.md): the resources the pipelines' steps
# wait on. async_iam.tf grants the runtime what each needs, nothing when
# they are empty.

variable "async_cloud_run_jobs" {
  description = "Cloud Run jobs that cloudrun.job steps run: job names in var.region, or projects/P/locations/R/jobs/J. The runtime gets roles/run.jobsExecutorWithOverrides and roles/run.viewer on each."
  type        = list(string)
  default     = []
}

variable "async_job_service_accounts" {
  description = "Emails of the service accounts those Cloud Run jobs run as: the runtime gets roles/iam.serviceAccountUser on each (running a job acts as it)."
  type        = list(string)
  default     = []
}

variable "async_bigquery_datasets" {
  description = "BigQuery datasets that bigquery.query steps write (DATASET in var.project, or PROJECT:DATASET): the runtime gets roles/bigquery.dataEditor on each, and roles/bigquery.jobUser on the project."
  type        = list(string)
  default     = []
}

variable "async_bigquery_job_user" {
  description = "Grant roles/bigquery.jobUser on the project even when no dataset is listed (bigquery.query steps that only read)."
  type        = bool
  default     = false
}

variable "async_invoked_services" {
  description = "Private Cloud Run services in var.region that async http steps call with an audience: the runtime gets roles/run.invoker on each."
  type        = list(string)
  default     = []
}
