# Names, the service URL, and the pipelines read from the pipeline files.
locals {
  name = "pipeline-${var.stage}"

  # The deterministic Cloud Run URL. It is SERVICE_URL, the tasks' and the
  # Scheduler jobs' OIDC audience and the service's expected audience:
  # one value, exactly (no trailing slash).
  service_url = "https://${local.name}-${data.google_project.this.number}.${var.region}.run.app"

  # One pipeline per file; schedule and time zone come from the files only.
  pipeline_files = fileset(var.pipeline_dir, "*.{yaml,yml}")
  pipelines      = { for f in local.pipeline_files : yamldecode(file("${var.pipeline_dir}/${f}")).name => yamldecode(file("${var.pipeline_dir}/${f}")) }
  scheduled = {
    for name, p in local.pipelines : name => {
      schedule  = p.schedule
      time_zone = try(p.time_zone, "UTC")
      # Roots: steps with after: [], or the first step when it has no after.
      roots = length([for i, s in p.steps : s.name if(try(s.after, null) == null ? i == 0 : length(s.after) == 0)])
    } if try(p.schedule, "") != ""
  }
}

data "google_project" "this" {
  project_id = var.project
}
