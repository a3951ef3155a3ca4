#!/usr/bin/env bash
# The whole pipeline on local Spark with Delta and MLflow, then a report of what it produced.
# Extra arguments (e.g. --set data.customers=20000) are passed to every job.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The demo regenerates its sample data, so it rebuilds the feature tables in full; a scheduled
# build_features without --full-refresh only processes what is new since its watermark.
for job in generate_data "build_features --full-refresh" build_training_set train score; do
  echo "== $job"
  start=$(date +%s)
  # shellcheck disable=SC2086 # the job's own flags split on purpose
  ./spark-submit.sh $job "$@" | tail -n 1
  echo "   ($(( $(date +%s) - start )) s)"
done
echo
.venv/bin/parity report "$@"
