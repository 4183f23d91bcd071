# What the gcloud commands and the doctor need.

output "service_url" {
  description = "SERVICE_URL: the service's URL and every token's audience."
  value       = local.service_url
}

output "runtime_service_account" {
  value = google_service_account.runtime.email
}

output "tasks_service_account" {
  value = google_service_account.tasks.email
}

output "scheduler_service_account" {
  value = google_service_account.scheduler.email
}

output "queue" {
  value = google_cloud_tasks_queue.steps.name
}

output "firestore_database" {
  value = google_firestore_database.ledger.name
}

output "scheduler_jobs" {
  value = concat([for j in google_cloud_scheduler_job.pipeline : j.name], [google_cloud_scheduler_job.reconcile.name])
}
