#!/usr/bin/env bash
# The whole pipeline on local Spark with Delta and MLflow, then a report of what it produced:
# the sample data, every declared feature set, and for every declared model (conf/models/) its
# training set, its sweep and its predictions; then the near-time stream of a model that declares one.
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
# Near time: a producer appends scoring requests (two of them malformed), and each model that
# declares a stream drains it: score_stream --available-now scores every request and stops.
for model in $(.venv/bin/parity models --streaming "$@"); do
  echo "== send-requests --model $model"
  .venv/bin/parity send-requests --model "$model" --count 200 --malformed 2 "$@" 2>/dev/null | tail -n 1
  run score_stream --model "$model" --available-now "$@"
done
echo
.venv/bin/parity report "$@"
