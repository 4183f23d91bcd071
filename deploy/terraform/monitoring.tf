# Who watches the watcher. Missed starts, late runs and stalled steps are all
# found by the sweeper, the reconcile tick (a Scheduler job calling
# POST /pipeline/reconcile every few minutes). Each pass logs the line
# "sweeper tick"; a log-based metric counts those lines and an alert policy
# fires when none was logged for 30 minutes (the tick job paused or deleted,
# its caller refused, the service failing).

resource "google_logging_metric" "sweeper_ticks" {
  name        = "${local.name}-sweeper-ticks"
  description = "Passes of the ${local.name} sweeper (POST /pipeline/reconcile): its \"sweeper tick\" log line."
  filter      = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.name}\" AND jsonPayload.message=\"sweeper tick\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${local.name} sweeper ticks"
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "sweeper_silent" {
  display_name          = "${local.name}: no sweeper tick for 30 minutes"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "no sweeper tick for 30 minutes"
    condition_absent {
      filter   = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.sweeper_ticks.name}\" AND resource.type=\"cloud_run_revision\""
      duration = "1800s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The ${local.name} sweeper has not run for 30 minutes: missed starts, late runs
      and stalled steps go unnoticed until it runs again.

      Check the reconcile tick's Scheduler job and the service:
      `pipeline doctor` (its online checks confirm the job ${local.name}-reconcile exists,
      is enabled and calls ${local.service_url}/pipeline/reconcile), then
      `gcloud scheduler jobs describe ${local.name}-reconcile --location ${var.region}`
      and the service's logs.
    EOT
  }

  depends_on = [google_project_service.apis]
}
