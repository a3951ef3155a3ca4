#!/usr/bin/env bash
# The whole pipeline on local Spark with Delta and MLflow, then a report of what it produced:
# the sample data, every declared feature set, and for every declared model (conf/models/) its
# training set, its sweep and its predictions.
# Extra arguments (e.g. --set data.customers=20000) are passed to every job.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run() {
  echo "== $*"
  start=$(date +%s)
  ./spark-submit.sh "$@" | tail -n 1
  echo "   ($(( $(date +%s) - start )) s)"
}
# The demo regenerates its sample data, so it rebuilds the feature tables in full; a scheduled
# build_features without --full-refresh only processes what is new since its watermark.
run generate_data "$@"
run build_features --full-refresh "$@"
for model in $(.venv/bin/parity models "$@"); do
  for job in build_training_set train score; do
    run "$job" --model "$model" "$@"
  done
done
echo
.venv/bin/parity report "$@"
