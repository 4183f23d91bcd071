# One Cloud Scheduler job per scheduled pipeline, generated from the pipeline
# files, plus the reconcile tick. Every job signs an OIDC token as the
# Scheduler invoker with audience = the service URL exactly.
#
# The attempt deadline is 30 s plus 15 s per root step, within [15 s, 30 min];
# `pipeline schedules` prints the same (doctor.AttemptDeadline).

resource "google_cloud_scheduler_job" "pipeline" {
  for_each = local.scheduled

  name             = "${local.name}-${each.key}"
  description      = "Starts the ${each.key} pipeline (${each.value.schedule}, ${each.value.time_zone})."
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = each.value.time_zone
  attempt_deadline = "${min(max(30 + 15 * each.value.roots, 15), 1800)}s"

  retry_config {
    retry_count          = var.scheduler_retries
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_url}/pipeline/start"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({ pipeline = each.key }))
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_url
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_scheduler_job" "reconcile" {
  name             = "${local.name}-reconcile"
  description      = "Reconcile tick: re-drives stalled steps and fails runs past max_run_duration."
  region           = var.region
  schedule         = var.reconcile_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"

  retry_config {
    retry_count = 0 # the next tick is the retry
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_url}/pipeline/reconcile"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_url
    }
  }

  depends_on = [google_project_service.apis]
}
