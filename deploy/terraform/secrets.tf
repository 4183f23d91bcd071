# The Discord webhook URL lives in Secret Manager; the service reads it as
# DISCORD_WEBHOOK_URL. Without var.discord_webhook_url the secret exists
# empty (add a version later with gcloud secrets versions add) and the
# service runs without Discord.

resource "google_secret_manager_secret" "discord" {
  secret_id = "${local.name}-discord-webhook"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "discord" {
  count       = var.discord_webhook_url == "" ? 0 : 1
  secret      = google_secret_manager_secret.discord.id
  secret_data = var.discord_webhook_url
}
