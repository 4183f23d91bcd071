# Who may do what.

# Both invokers may call the service.
resource "google_cloud_run_v2_service_iam_member" "tasks_invoker" {
  name     = google_cloud_run_v2_service.pipeline.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks.email}"
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_invoker" {
  name     = google_cloud_run_v2_service.pipeline.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# Operators (ALLOWED_OPERATORS) reach the private service too: a user, or a
# service account by its email's domain.
resource "google_cloud_run_v2_service_iam_member" "operator_invoker" {
  for_each = toset(var.allowed_operators)
  name     = google_cloud_run_v2_service.pipeline.name
  location = var.region
  role     = "roles/run.invoker"
  member   = endswith(each.value, ".gserviceaccount.com") ? "serviceAccount:${each.value}" : "user:${each.value}"
}

# Viewers (ALLOWED_VIEWERS) read the dashboard: they reach the private
# service too. One binding per member: an email in both lists is bound once,
# as an operator.
resource "google_cloud_run_v2_service_iam_member" "viewer_invoker" {
  for_each = setsubtract(toset(var.allowed_viewers), toset(var.allowed_operators))
  name     = google_cloud_run_v2_service.pipeline.name
  location = var.region
  role     = "roles/run.invoker"
  member   = endswith(each.value, ".gserviceaccount.com") ? "serviceAccount:${each.value}" : "user:${each.value}"
}

# The runtime enqueues steps and keeps the ledger in Firestore.
resource "google_project_iam_member" "runtime_enqueuer" {
  project = var.project
  role    = "roles/cloudtasks.enqueuer"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_project_iam_member" "runtime_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

# The runtime puts the tasks invoker's identity in the tasks' OIDC tokens.
resource "google_service_account_iam_member" "runtime_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.runtime.email}"
}

# The runtime reads the Discord webhook.
resource "google_secret_manager_secret_iam_member" "runtime_discord" {
  secret_id = google_secret_manager_secret.discord.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

# `pipeline pause` and `unpause` through the service pause and resume the
# pipelines' Scheduler jobs: the runtime may do that, and nothing more.
resource "google_project_iam_custom_role" "scheduler_pauser" {
  role_id     = replace("${local.name}_scheduler_pauser", "-", "_")
  title       = "${local.name} Scheduler job pauser"
  description = "Pause and resume Cloud Scheduler jobs (pipeline pause/unpause)."
  permissions = ["cloudscheduler.jobs.get", "cloudscheduler.jobs.pause", "cloudscheduler.jobs.enable"]
}

resource "google_project_iam_member" "runtime_scheduler_pauser" {
  project = var.project
  role    = google_project_iam_custom_role.scheduler_pauser.name
  member  = "serviceAccount:${google_service_account.runtime.email}"
}
