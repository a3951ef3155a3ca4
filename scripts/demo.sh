#!/usr/bin/env bash
# The whole pipeline on local Spark with Delta and MLflow, then a report of what it produced:
# the sample data, every declared feature set, and for every declared model (conf/models/) its
# training set, its sweep and its predictions; then the near-time stream of a model that declares one.
# Extra arguments (e.g. --set data.customers=20000) are passed to every job.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
last=$(mktemp)
trap 'rm -f "$last"' EXIT
run() {
  echo "== $*"
  start=$(date +%s)
  local status=0
  ./spark-submit.sh "$@" | tail -n 1 | tee "$last" || status=$?
  echo "   ($(( $(date +%s) - start )) s)"
  return "$status"
}
# The demo regenerates its sample data, so it rebuilds the feature tables in full; a scheduled
# build_features without --full-refresh only processes what is new since its watermark.
run generate_data "$@"
run build_features --full-refresh "$@"
# Two candidates of every model, each trained with the newest labels held out for the
# promotion gate to validate it on: the first (six weeks held out) becomes the champion if it
# reaches the model's floor; the second (four weeks held out, so trained on two more weeks of
# labels) replaces it only if it is at least as good on the labels neither saw. Scoring uses
# the champion.
for model in $(.venv/bin/parity models "$@"); do
  for holdout in 42 28; do
    run build_training_set --model "$model" --holdout-days "$holdout" "$@"
    run train --model "$model" "$@"
    version=$(.venv/bin/python -c 'import json,sys; print(json.loads(sys.argv[1])["model_version"])' "$(tail -n 1 "$last")")
    if [[ $holdout == 42 ]]; then
      run promote --model "$model" --version "$version" --reason "first champion" "$@"
    else
      run promote --model "$model" --version "$version" --reason "trained on two more weeks of labels" "$@" \
        || echo "   (refused: the champion stays; the error line above names the check)"
    fi
  done
  run score --model "$model" "$@"
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
