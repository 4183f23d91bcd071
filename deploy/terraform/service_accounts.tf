# Three identities: the service itself, Cloud Tasks calling it, and Cloud
# Scheduler calling it. The two invokers are the ALLOWED_INVOKERS.

resource "google_service_account" "runtime" {
  account_id   = "${local.name}-run"
  display_name = "pipeline ${var.stage}: Cloud Run runtime"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "tasks" {
  account_id   = "${local.name}-tasks"
  display_name = "pipeline ${var.stage}: Cloud Tasks invoker"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "scheduler" {
  account_id   = "${local.name}-scheduler"
  display_name = "pipeline ${var.stage}: Cloud Scheduler invoker"
  depends_on   = [google_project_service.apis]
}
