#!/usr/bin/env bash
# Print the deployed service's environment as shell export lines, so that
# `pipeline doctor` (and the curl examples) see what the service sees:
#
#   eval "$(deploy/gcloud/service-env.sh --project P --region europe-west1 --stage dev)"
#
# Plain variables are copied as deployed; secret-backed ones (DISCORD_WEBHOOK_URL)
# are read from Secret Manager, which needs roles/secretmanager.secretAccessor
# on the secret. K_SERVICE is set to the service's name. Needs gcloud and jq.
# Nothing is printed unless every variable could be read.
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --project ID           Google Cloud project (required)
  --region REGION        the service's region (default europe-west1)
  --stage dev|prod       the service is pipeline-STAGE (default dev)
  --service NAME         the service's name instead (default pipeline-STAGE)
USAGE
}

PROJECT="" REGION="europe-west1" STAGE="dev" SERVICE=""
while (($#)); do
  case "$1" in
    --project) PROJECT="$2"; shift 2 ;;
    --region) REGION="$2"; shift 2 ;;
    --stage) STAGE="$2"; shift 2 ;;
    --service) SERVICE="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "service-env.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n "$PROJECT" ]] || { echo "service-env.sh: --project is required" >&2; exit 2; }
SERVICE="${SERVICE:-pipeline-$STAGE}"
command -v jq >/dev/null || { echo "service-env.sh: jq is not installed (apt-get install jq, brew install jq)" >&2; exit 2; }

json=$(gcloud run services describe "$SERVICE" --project "$PROJECT" --region "$REGION" --format json) || {
  echo "service-env.sh: cannot describe Cloud Run service $SERVICE in $PROJECT/$REGION (is it deployed? gcloud auth login?)" >&2
  exit 1
}
env_filter='.spec.template.spec.containers[0].env // [] | .[]'

lines=()
# Plain values (an empty value is omitted from the JSON: it exports as empty).
while IFS= read -r line; do
  lines+=("$line")
done < <(jq -r "$env_filter"' | select(.valueFrom.secretKeyRef | not) | "export \(.name)=\((.value // "") | @sh)"' <<<"$json")
# Secret-backed values: NAME, secret, version.
while IFS=$'\t' read -r name secret version; do
  [[ -n "$name" ]] || continue
  value=$(gcloud secrets versions access "${version:-latest}" --secret "$secret" --project "$PROJECT") || {
    echo "service-env.sh: cannot read secret $secret (version ${version:-latest}) for $name: you need roles/secretmanager.secretAccessor on it" >&2
    exit 1
  }
  lines+=("export $name=$(printf '%q' "$value")")
done < <(jq -r "$env_filter"' | select(.valueFrom.secretKeyRef) | [.name, .valueFrom.secretKeyRef.name, (.valueFrom.secretKeyRef.key // "latest")] | @tsv' <<<"$json")
lines+=("export K_SERVICE=$(printf '%q' "$SERVICE")")
printf '%s\n' "${lines[@]}"
