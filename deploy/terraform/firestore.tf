# The run ledger: a Firestore database per stage, and the composite indexes
# ListRuns needs on the runs collection (see ledger/firestoreledger).

resource "google_firestore_database" "ledger" {
  name                    = local.name
  location_id             = var.firestore_location != "" ? var.firestore_location : var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.stage == "prod" ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.stage == "prod" ? "ABANDON" : "DELETE"
  depends_on              = [google_project_service.apis]
}

resource "google_firestore_index" "runs_by_pipeline" {
  database   = google_firestore_database.ledger.name
  collection = var.ledger_collection
  fields {
    field_path = "pipeline"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

resource "google_firestore_index" "runs_by_status" {
  database   = google_firestore_database.ledger.name
  collection = var.ledger_collection
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

resource "google_firestore_index" "runs_by_pipeline_status" {
  database   = google_firestore_database.ledger.name
  collection = var.ledger_collection
  fields {
    field_path = "pipeline"
    order      = "ASCENDING"
  }
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# The sweeper and backfill launch pending runs oldest first (status, then
# pipeline + status, by created_at ascending).
resource "google_firestore_index" "runs_by_status_oldest" {
  database   = google_firestore_database.ledger.name
  collection = var.ledger_collection
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "runs_by_pipeline_status_oldest" {
  database   = google_firestore_database.ledger.name
  collection = var.ledger_collection
  fields {
    field_path = "pipeline"
    order      = "ASCENDING"
  }
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "ASCENDING"
  }
}

# Owed final notifications, by finish time (RunFilter.NotifyPending): the
# sweeper reads only the runs whose notification is owed.
resource "google_firestore_index" "runs_notify_pending" {
  database   = google_firestore_database.ledger.name
  collection = var.ledger_collection
  fields {
    field_path = "notify"
    order      = "ASCENDING"
  }
  fields {
    field_path = "finished_at"
    order      = "ASCENDING"
  }
}
