# The Cloud Run service. Terraform creates it; `gcloud run deploy --image`
# rolls out new images (the image is under ignore_changes).
resource "google_cloud_run_v2_service" "pipeline" {
  name                = local.name
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.stage == "prod"

  template {
    service_account                  = google_service_account.runtime.email
    timeout                          = "${var.request_timeout_seconds}s"
    max_instance_request_concurrency = 20

    scaling {
      min_instance_count = 0
      max_instance_count = 10
    }

    containers {
      image = var.image
      args  = ["serve"]

      resources {
        limits   = { cpu = "1", memory = "512Mi" }
        cpu_idle = true
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
      }

      dynamic "env" {
        for_each = {
          PIPELINE_BACKEND          = "gcp"
          GOOGLE_CLOUD_PROJECT      = var.project
          SERVICE_URL               = local.service_url
          CLOUD_TASKS_LOCATION      = var.region
          CLOUD_TASKS_QUEUE         = google_cloud_tasks_queue.steps.name
          TASKS_SERVICE_ACCOUNT     = google_service_account.tasks.email
          ALLOWED_INVOKERS          = join(",", [google_service_account.tasks.email, google_service_account.scheduler.email])
          ALLOWED_OPERATORS         = join(",", var.allowed_operators)
          ALLOWED_VIEWERS           = join(",", var.allowed_viewers)
          IAP_AUDIENCE              = var.iap_audience
          FIRESTORE_DATABASE        = google_firestore_database.ledger.name
          LEDGER_COLLECTION         = var.ledger_collection
          DISCORD_MENTION           = var.discord_mention
          SCHEDULER_SERVICE_ACCOUNT = google_service_account.scheduler.email
          CLOUD_RUN_REGION          = var.region
          CLOUD_RUN_TIMEOUT         = "${var.request_timeout_seconds}s"
          QUEUE_MAX_ATTEMPTS        = tostring(var.queue_max_attempts)
          SCHEDULER_RETRIES         = tostring(var.scheduler_retries)
          RUNTIME_SERVICE_ACCOUNT   = google_service_account.runtime.email
        }
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.discord_webhook_url == "" ? [] : [1]
        content {
          name = "DISCORD_WEBHOOK_URL"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.discord.secret_id
              version = "latest"
            }
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.runtime_datastore,
    google_project_iam_member.runtime_enqueuer,
    google_secret_manager_secret_iam_member.runtime_discord,
    google_secret_manager_secret_version.discord,
  ]
}
