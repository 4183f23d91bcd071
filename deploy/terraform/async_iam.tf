# What the runtime needs for the asynchronous steps the pipelines use
# (docs/async.md, docs/deploy.md): each grant exists only when its variable
# lists something, so a deployment without such steps grants nothing more.
# `pipeline doctor` lists the roles each deployed step needs.

locals {
  async_jobs = {
    for j in var.async_cloud_run_jobs : j => (
      length(split("/", j)) == 6
      ? { project = split("/", j)[1], location = split("/", j)[3], name = split("/", j)[5] }
      : { project = var.project, location = var.region, name = j }
    )
  }
  async_datasets = {
    for d in var.async_bigquery_datasets : d => (
      strcontains(d, ":")
      ? { project = split(":", d)[0], dataset = split(":", d)[1] }
      : { project = var.project, dataset = d }
    )
  }
  runtime_member = "serviceAccount:${google_service_account.runtime.email}"
}

# cloudrun.job: run each job with overrides and cancel its executions
# (run.jobs.run, run.jobs.runWithOverrides, run.executions.cancel)...
resource "google_cloud_run_v2_job_iam_member" "runtime_runs_jobs" {
  for_each = local.async_jobs
  project  = each.value.project
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = local.runtime_member
}

# ...list and read them (run.executions.list, run.executions.get), which
# the executor role does not hold...
resource "google_cloud_run_v2_job_iam_member" "runtime_reads_job_executions" {
  for_each = local.async_jobs
  project  = each.value.project
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.viewer"
  member   = local.runtime_member
}

# ...acting as the job's own service account.
resource "google_service_account_iam_member" "runtime_acts_as_job_accounts" {
  for_each           = toset(var.async_job_service_accounts)
  service_account_id = "projects/-/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = local.runtime_member
}

# bigquery.query: insert and read query jobs in the project...
resource "google_project_iam_member" "runtime_bigquery_jobs" {
  count   = length(var.async_bigquery_datasets) > 0 || var.async_bigquery_job_user ? 1 : 0
  project = var.project
  role    = "roles/bigquery.jobUser"
  member  = local.runtime_member
}

# ...writing the datasets the queries write.
resource "google_bigquery_dataset_iam_member" "runtime_writes_datasets" {
  for_each   = local.async_datasets
  project    = each.value.project
  dataset_id = each.value.dataset
  role       = "roles/bigquery.dataEditor"
  member     = local.runtime_member
}

# http with async: true and an audience: call the private target.
resource "google_cloud_run_v2_service_iam_member" "runtime_invokes_targets" {
  for_each = toset(var.async_invoked_services)
  location = var.region
  name     = each.value
  role     = "roles/run.invoker"
  member   = local.runtime_member
}
