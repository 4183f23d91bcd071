#!/usr/bin/env bash
# Create or update the pipeline service on Google Cloud with gcloud: what
# deploy/terraform does, for those without Terraform. Safe to re-run: each
# resource is created if missing and updated otherwise.
#
#   deploy/gcloud/deploy.sh --project P --region europe-west1 --stage dev \
#       --image europe-west1-docker.pkg.dev/P/pipeline/pipeline:TAG [--dry-run]
#
# --dry-run prints every command (describe checks included) and runs none;
# existence checks are then assumed to fail, so the create commands print.
# The Scheduler jobs come from the pipeline files via `pipeline schedules`.
# DISCORD_WEBHOOK_URL in the environment, if set, is stored in Secret Manager
# (never printed). ALLOWED_OPERATORS (or --operators) lists who may call the
# operator routes, ALLOWED_VIEWERS (or --viewers) who may read the dashboard;
# each of them also gets run.invoker on the service. IAP_AUDIENCE (or
# --iap-audience) turns on the check of Identity-Aware Proxy's signed header.
set -euo pipefail

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --project ID           Google Cloud project (required)
  --region REGION        Cloud Run, Cloud Tasks and Scheduler region (default europe-west1)
  --stage dev|prod       names every resource pipeline-STAGE (default dev)
  --image IMAGE          container image to deploy (required)
  --pipelines DIR        pipeline files (default pipelines)
  --pipeline-bin CMD     the pipeline binary, to read the schedules (default: pipeline on PATH, else go run ./cmd/pipeline)
  --timeout SECONDS      Cloud Run request timeout (default 1800)
  --operators EMAILS     comma list of operators (ALLOWED_OPERATORS; default: $ALLOWED_OPERATORS, else
                         none, and the operator routes are closed)
  --viewers EMAILS       comma list of dashboard viewers (ALLOWED_VIEWERS; default: $ALLOWED_VIEWERS, else none)
  --iap-audience AUD     the service's IAP audience (IAP_AUDIENCE; default: $IAP_AUDIENCE, else IAP is not checked)
  --dry-run              print the commands, run none
Asynchronous steps (docs/async.md): the runtime gets the roles their kinds need, on
these resources only (each a comma list; default the ASYNC_* variable of that name):
  --run-jobs JOBS        Cloud Run jobs cloudrun.job steps run (NAME in --region, or
                         projects/P/locations/R/jobs/J): roles/run.jobsExecutorWithOverrides
                         (run, cancel) and roles/run.viewer (read executions)
  --job-accounts EMAILS  the service accounts those jobs run as: roles/iam.serviceAccountUser
  --bigquery-datasets DS datasets bigquery.query steps write (DATASET or PROJECT:DATASET):
                         roles/bigquery.dataEditor each, roles/bigquery.jobUser on the project
  --bigquery-job-user    roles/bigquery.jobUser even without a dataset (queries that only read)
  --invoked-services S   private Cloud Run services (in --region) async http steps call with
                         an audience: roles/run.invoker
USAGE
}

PROJECT="" REGION="europe-west1" STAGE="dev" IMAGE="" PIPELINES="pipelines" PIPELINE_BIN="" TIMEOUT=1800 DRY_RUN=0
OPERATORS="${ALLOWED_OPERATORS:-}" VIEWERS="${ALLOWED_VIEWERS:-}" IAP_AUD="${IAP_AUDIENCE:-}"
ASYNC_RUN_JOBS="${ASYNC_RUN_JOBS:-}" ASYNC_JOB_ACCOUNTS="${ASYNC_JOB_ACCOUNTS:-}"
ASYNC_BIGQUERY_DATASETS="${ASYNC_BIGQUERY_DATASETS:-}" ASYNC_BIGQUERY_JOB_USER="${ASYNC_BIGQUERY_JOB_USER:-0}"
ASYNC_INVOKED_SERVICES="${ASYNC_INVOKED_SERVICES:-}"
QUEUE_MAX_ATTEMPTS=25 SCHEDULER_RETRIES=3 RECONCILE_SCHEDULE="*/5 * * * *" LEDGER_COLLECTION="pipeline_runs"

while (($#)); do
  case "$1" in
    --project) PROJECT="$2"; shift 2 ;;
    --region) REGION="$2"; shift 2 ;;
    --stage) STAGE="$2"; shift 2 ;;
    --image) IMAGE="$2"; shift 2 ;;
    --pipelines) PIPELINES="$2"; shift 2 ;;
    --pipeline-bin) PIPELINE_BIN="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --operators) OPERATORS="$2"; shift 2 ;;
    --viewers) VIEWERS="$2"; shift 2 ;;
    --iap-audience) IAP_AUD="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --run-jobs) ASYNC_RUN_JOBS="$2"; shift 2 ;;
    --job-accounts) ASYNC_JOB_ACCOUNTS="$2"; shift 2 ;;
    --bigquery-datasets) ASYNC_BIGQUERY_DATASETS="$2"; shift 2 ;;
    --bigquery-job-user) ASYNC_BIGQUERY_JOB_USER=1; shift ;;
    --invoked-services) ASYNC_INVOKED_SERVICES="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n "$PROJECT" ]] || { echo "deploy.sh: --project is required" >&2; exit 2; }
[[ -n "$IMAGE" ]] || { echo "deploy.sh: --image is required" >&2; exit 2; }
[[ "$STAGE" == dev || "$STAGE" == prod ]] || { echo "deploy.sh: --stage must be dev or prod" >&2; exit 2; }
OPERATORS="${OPERATORS// /}" VIEWERS="${VIEWERS// /}"

NAME="pipeline-$STAGE"
RUNTIME_SA="$NAME-run@$PROJECT.iam.gserviceaccount.com"
TASKS_SA="$NAME-tasks@$PROJECT.iam.gserviceaccount.com"
SCHEDULER_SA="$NAME-scheduler@$PROJECT.iam.gserviceaccount.com"
SECRET="$NAME-discord-webhook"
G=(gcloud --project "$PROJECT" --quiet)

# run prints a command and, unless --dry-run, runs it.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if ((DRY_RUN == 0)); then
    "$@"
  fi
}

# exists runs a describe command quietly; under --dry-run it prints it and
# answers no.
exists() {
  if ((DRY_RUN)); then
    printf '+'
    printf ' %q' "$@"
    printf '   # exists? (dry run: assume not)\n'
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# run_allow_exists runs a create command that may find its resource there.
run_allow_exists() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if ((DRY_RUN)); then
    return 0
  fi
  local out
  if ! out=$("$@" 2>&1); then
    if grep -qi 'already exists' <<<"$out"; then
      echo "  (already exists)"
      return 0
    fi
    echo "$out" >&2
    return 1
  fi
}

pipeline_bin() {
  if [[ -n "$PIPELINE_BIN" ]]; then
    read -r -a cmd <<<"$PIPELINE_BIN"
    "${cmd[@]}" "$@"
  elif command -v pipeline >/dev/null; then
    pipeline "$@"
  else
    go run ./cmd/pipeline "$@"
  fi
}

echo "# --- APIs"
run "${G[@]}" services enable run.googleapis.com cloudtasks.googleapis.com cloudscheduler.googleapis.com \
  firestore.googleapis.com secretmanager.googleapis.com iam.googleapis.com

if ((DRY_RUN)); then
  PROJECT_NUMBER="PROJECT_NUMBER"
  echo "+ gcloud projects describe $PROJECT --format='value(projectNumber)'   # dry run: PROJECT_NUMBER"
else
  PROJECT_NUMBER=$(gcloud projects describe "$PROJECT" --format='value(projectNumber)')
fi
# The deterministic Cloud Run URL: SERVICE_URL and every token's audience, exactly.
SERVICE_URL="https://$NAME-$PROJECT_NUMBER.$REGION.run.app"

echo "# --- service accounts"
for pair in "run:Cloud Run runtime" "tasks:Cloud Tasks invoker" "scheduler:Cloud Scheduler invoker"; do
  id="$NAME-${pair%%:*}"
  if ! exists "${G[@]}" iam service-accounts describe "$id@$PROJECT.iam.gserviceaccount.com"; then
    run "${G[@]}" iam service-accounts create "$id" --display-name "pipeline $STAGE: ${pair#*:}"
  fi
done

echo "# --- IAM"
for role in roles/cloudtasks.enqueuer roles/datastore.user; do
  run "${G[@]}" projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$RUNTIME_SA" --role "$role" --condition None
done
run "${G[@]}" iam service-accounts add-iam-policy-binding "$TASKS_SA" \
  --member "serviceAccount:$RUNTIME_SA" --role roles/iam.serviceAccountUser

echo "# --- IAM for asynchronous steps (only what the lists name)"
IFS=',' read -r -a async_jobs <<<"${ASYNC_RUN_JOBS// /}"
for job in "${async_jobs[@]}"; do
  [[ -n "$job" ]] || continue
  job_project="$PROJECT" job_region="$REGION"
  if [[ "$job" == projects/*/locations/*/jobs/* ]]; then
    IFS='/' read -r _ job_project _ job_region _ job <<<"$job"
  fi
  run gcloud --project "$job_project" --quiet run jobs add-iam-policy-binding "$job" --region "$job_region" \
    --member "serviceAccount:$RUNTIME_SA" --role roles/run.jobsExecutorWithOverrides
  run gcloud --project "$job_project" --quiet run jobs add-iam-policy-binding "$job" --region "$job_region" \
    --member "serviceAccount:$RUNTIME_SA" --role roles/run.viewer
done
IFS=',' read -r -a async_accounts <<<"${ASYNC_JOB_ACCOUNTS// /}"
for account in "${async_accounts[@]}"; do
  [[ -n "$account" ]] || continue
  run "${G[@]}" iam service-accounts add-iam-policy-binding "$account" \
    --member "serviceAccount:$RUNTIME_SA" --role roles/iam.serviceAccountUser
done
IFS=',' read -r -a async_datasets <<<"${ASYNC_BIGQUERY_DATASETS// /}"
if ((${#async_datasets[@]})) || [[ "$ASYNC_BIGQUERY_JOB_USER" == 1 ]]; then
  run "${G[@]}" services enable bigquery.googleapis.com
  run "${G[@]}" projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$RUNTIME_SA" \
    --role roles/bigquery.jobUser --condition None
fi
for dataset in "${async_datasets[@]}"; do
  [[ -n "$dataset" ]] || continue
  [[ "$dataset" == *:* ]] || dataset="$PROJECT:$dataset"
  run bq --project_id "${dataset%%:*}" add-iam-policy-binding \
    --member "serviceAccount:$RUNTIME_SA" --role roles/bigquery.dataEditor "$dataset"
done
IFS=',' read -r -a async_services <<<"${ASYNC_INVOKED_SERVICES// /}"
for target in "${async_services[@]}"; do
  [[ -n "$target" ]] || continue
  run "${G[@]}" run services add-iam-policy-binding "$target" --region "$REGION" \
    --member "serviceAccount:$RUNTIME_SA" --role roles/run.invoker
done

echo "# --- Firestore"
if ! exists "${G[@]}" firestore databases describe --database "$NAME"; then
  run "${G[@]}" firestore databases create --database "$NAME" --location "$REGION" --type firestore-native
fi
for fields in "pipeline status" "status" "pipeline"; do
  args=()
  for f in $fields; do
    args+=(--field-config "field-path=$f,order=ascending")
  done
  run_allow_exists "${G[@]}" firestore indexes composite create --database "$NAME" \
    --collection-group "$LEDGER_COLLECTION" --query-scope collection "${args[@]}" \
    --field-config field-path=created_at,order=descending --async
done

echo "# --- Cloud Tasks queue"
queue_flags=(--location "$REGION" --max-attempts "$QUEUE_MAX_ATTEMPTS" --min-backoff 10s --max-backoff 300s
  --max-doublings 5 --max-dispatches-per-second 50 --max-concurrent-dispatches 100 --log-sampling-ratio 1.0)
if exists "${G[@]}" tasks queues describe "$NAME" --location "$REGION"; then
  run "${G[@]}" tasks queues update "$NAME" "${queue_flags[@]}"
else
  run "${G[@]}" tasks queues create "$NAME" "${queue_flags[@]}"
fi

echo "# --- Discord webhook secret"
if ! exists "${G[@]}" secrets describe "$SECRET"; then
  run "${G[@]}" secrets create "$SECRET" --replication-policy automatic
fi
run "${G[@]}" secrets add-iam-policy-binding "$SECRET" --member "serviceAccount:$RUNTIME_SA" \
  --role roles/secretmanager.secretAccessor
secret_flags=()
if [[ -n "${DISCORD_WEBHOOK_URL:-}" ]]; then
  echo "+ printf %s \"\$DISCORD_WEBHOOK_URL\" | gcloud --project $PROJECT secrets versions add $SECRET --data-file=-"
  if ((DRY_RUN == 0)); then
    printf %s "$DISCORD_WEBHOOK_URL" | "${G[@]}" secrets versions add "$SECRET" --data-file=-
  fi
  secret_flags=(--set-secrets "DISCORD_WEBHOOK_URL=$SECRET:latest")
elif ((DRY_RUN == 0)) && [[ -n "$("${G[@]}" secrets versions list "$SECRET" --filter state=enabled --limit 1 --format='value(name)')" ]]; then
  secret_flags=(--set-secrets "DISCORD_WEBHOOK_URL=$SECRET:latest")
fi

echo "# --- Cloud Run service"
env_vars=(
  "PIPELINE_BACKEND=gcp"
  "GOOGLE_CLOUD_PROJECT=$PROJECT"
  "SERVICE_URL=$SERVICE_URL"
  "CLOUD_TASKS_LOCATION=$REGION"
  "CLOUD_TASKS_QUEUE=$NAME"
  "TASKS_SERVICE_ACCOUNT=$TASKS_SA"
  "ALLOWED_INVOKERS=$TASKS_SA,$SCHEDULER_SA"
  "ALLOWED_OPERATORS=$OPERATORS"
  "ALLOWED_VIEWERS=$VIEWERS"
  "IAP_AUDIENCE=$IAP_AUD"
  "FIRESTORE_DATABASE=$NAME"
  "LEDGER_COLLECTION=$LEDGER_COLLECTION"
  "DISCORD_MENTION=${DISCORD_MENTION:-}"
  "SCHEDULER_SERVICE_ACCOUNT=$SCHEDULER_SA"
  "CLOUD_RUN_REGION=$REGION"
  "CLOUD_RUN_TIMEOUT=${TIMEOUT}s"
  "QUEUE_MAX_ATTEMPTS=$QUEUE_MAX_ATTEMPTS"
  "SCHEDULER_RETRIES=$SCHEDULER_RETRIES"
  "RUNTIME_SERVICE_ACCOUNT=$RUNTIME_SA"
)
# ALLOWED_INVOKERS, ALLOWED_OPERATORS and ALLOWED_VIEWERS hold commas: "|" delimits the list instead.
env_flag="^|^$(IFS='|'; echo "${env_vars[*]}")"
run "${G[@]}" run deploy "$NAME" --region "$REGION" --image "$IMAGE" --service-account "$RUNTIME_SA" \
  --no-allow-unauthenticated --ingress all --timeout "$TIMEOUT" --concurrency 20 --min-instances 0 \
  --max-instances 10 --cpu 1 --memory 512Mi --cpu-throttling --args serve \
  --set-env-vars "$env_flag" "${secret_flags[@]}"
# The invokers, then operators and viewers (people reach the private service
# too), each member once.
members=("serviceAccount:$TASKS_SA" "serviceAccount:$SCHEDULER_SA")
IFS=',' read -r -a people <<<"$OPERATORS,$VIEWERS"
for email in "${people[@]}"; do
  [[ -n "$email" ]] || continue
  if [[ "$email" == *.gserviceaccount.com ]]; then
    member="serviceAccount:$email"
  else
    member="user:$email"
  fi
  [[ " ${members[*]} " == *" $member "* ]] || members+=("$member")
done
for member in "${members[@]}"; do
  run "${G[@]}" run services add-iam-policy-binding "$NAME" --region "$REGION" \
    --member "$member" --role roles/run.invoker
done

echo "# --- Cloud Scheduler jobs (from: pipeline schedules --file $PIPELINES)"
# scheduler_job NAME SCHEDULE TIME_ZONE DEADLINE PATH BODY RETRIES
scheduler_job() {
  local job="$1" schedule="$2" tz="$3" deadline="$4" path="$5" body="$6" retries="$7"
  local common=(--location "$REGION" --schedule "$schedule" --time-zone "$tz" --attempt-deadline "$deadline"
    --uri "$SERVICE_URL$path" --http-method POST --message-body "$body"
    --oidc-service-account-email "$SCHEDULER_SA" --oidc-token-audience "$SERVICE_URL"
    --max-retry-attempts "$retries" --min-backoff 30s --max-backoff 300s --max-doublings 3)
  if exists "${G[@]}" scheduler jobs describe "$job" --location "$REGION"; then
    run "${G[@]}" scheduler jobs update http "$job" "${common[@]}" --update-headers Content-Type=application/json
  else
    run "${G[@]}" scheduler jobs create http "$job" "${common[@]}" --headers Content-Type=application/json
  fi
}
schedules=$(pipeline_bin schedules --file "$PIPELINES")
while IFS=$'\t' read -r pipeline schedule tz deadline; do
  [[ -n "$pipeline" ]] || continue
  scheduler_job "$NAME-$pipeline" "$schedule" "$tz" "$deadline" /pipeline/start "{\"pipeline\":\"$pipeline\"}" "$SCHEDULER_RETRIES"
done <<<"$schedules"
scheduler_job "$NAME-reconcile" "$RECONCILE_SCHEDULE" Etc/UTC 120s /pipeline/reconcile '{}' 0

echo "# --- done: $SERVICE_URL"
echo "# check it: pipeline doctor, with the service's environment (see docs/deploy.md)"
