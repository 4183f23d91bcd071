# The Cloud Tasks queue that carries steps. Per-step attempt limits are the
# handler's: it counts a step's attempts in the ledger (one per claimed
# delivery, in the step record), not X-CloudTasks-TaskRetryCount, which it
# only logs. The queue's max_attempts is above every step's max_attempts, so
# the delivery that uses up a step's last attempt marks the step failed while
# the queue still retries. A 409 (lease held, predecessors not done) uses a
# queue attempt but no step attempt, hence the headroom.
resource "google_cloud_tasks_queue" "steps" {
  name     = local.name
  location = var.region

  rate_limits {
    max_dispatches_per_second = 50
    max_concurrent_dispatches = 100
  }

  retry_config {
    max_attempts       = var.queue_max_attempts
    max_retry_duration = "0s" # no limit: the attempt count bounds retries
    min_backoff        = "10s"
    max_backoff        = "300s"
    max_doublings      = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.apis]
}
