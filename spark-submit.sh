#!/usr/bin/env bash
# Submit a parity job to local Spark or a cluster:
#   ./spark-submit.sh <job> [--env NAME] [--set key=value ...] [job args] [-- extra spark-submit args]
# The conf decides the master and Spark settings; lib/parity is shipped as a zip (--py-files)
# and the cached Delta jars with --jars. Executors run the project's Python (.venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PARITY_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

known_jobs() { (cd "$ROOT/jobs" && ls -1 *.py | sed 's/\.py$//' | paste -sd, -); }

if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "error: usage: spark-submit.sh <job> [--env NAME] [--set k=v ...] [-- spark-submit args]; jobs: $(known_jobs)" >&2
  exit 2
fi
job="$1"; shift
if [[ ! "$job" =~ ^[a-z_][a-z0-9_]*$ || ! -f "$ROOT/jobs/$job.py" ]]; then
  echo "error: unknown job '$job'; known jobs: $(known_jobs)" >&2
  exit 2
fi
if [[ ! -x "$PY" ]]; then
  echo "error: no virtualenv at $VENV; run 'make setup' first" >&2
  exit 2
fi

job_args=()
extra_args=()
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "--" ]]; then shift; extra_args=("$@"); break; fi
  job_args+=("$1"); shift
done

export TZ=UTC PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY" MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
# Validates the conf (unknown keys, bad values, missing jars) before Spark starts.
submit_out="$("$PY" -m parity.cli submit-args --conf-dir "$ROOT/conf" "${job_args[@]}")" || exit $?
mapfile -t submit_args <<< "$submit_out"

mkdir -p "$ROOT/build"
lib_zip="$("$PY" -m parity.cli package --out "$ROOT/build/parity-lib-$$.zip")"
trap 'rm -f "$lib_zip"' EXIT

"$VENV/bin/spark-submit" "${submit_args[@]}" --py-files "$lib_zip" "${extra_args[@]}" \
  "$ROOT/jobs/$job.py" "${job_args[@]}"
