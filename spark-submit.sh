#!/usr/bin/env bash
# Submit a parity job to local Spark or a cluster:
#   ./spark-submit.sh <job> [--env NAME] [--set key=value ...] [job args] [-- extra spark-submit args]
# The conf folder is conf/ here, or $PARITY_CONF_DIR (a project of its own: its conf and, by
# default, its tables and MLflow store, under the folder that holds that conf folder).
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
# The conf owns the master, and this script ships the Delta jars and the library: extra
# arguments that would silently replace them are refused (use --set spark.master=... etc.).
for arg in "${extra_args[@]}"; do
  case "$arg" in
    --master|--master=*|--jars|--jars=*|--py-files|--py-files=*|--packages|--packages=*)
      echo "error: extra spark-submit argument '${arg%%=*}' would replace what parity sets; set spark.master or spark.conf.* with --set instead" >&2
      exit 2 ;;
  esac
done

export TZ=UTC PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY" MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
# One Python start before the JVM's: it validates the conf (unknown keys, bad values, missing
# jars) before Spark starts, prints the spark-submit arguments, and zips the library.
export PARITY_SPARK_LOG="$ROOT/build/logs/$job-$(date -u +%Y%m%dT%H%M%S)-$$.log"
mkdir -p "$ROOT/build/logs"
lib_zip="$ROOT/build/parity-lib-$$.zip"
# A project of its own keeps its conf folder elsewhere (PARITY_CONF_DIR); the job reads it too.
export PARITY_CONF_DIR="${PARITY_CONF_DIR:-$ROOT/conf}"
submit_out="$("$PY" -m parity.app.cli submit-args --conf-dir "$PARITY_CONF_DIR" --log-file "$PARITY_SPARK_LOG" --package-out "$lib_zip" "${job_args[@]}")" || exit $?
mapfile -t submit_args <<< "$submit_out"
trap 'rm -f "$lib_zip"' EXIT

# spark-submit merges the Python driver's stderr into its stdout, so the job's `error:` line
# is routed back to stderr here; stdout keeps the job's output, ending with its JSON summary.
# The JVM's notice about the incubating vector module is noise, not a problem: it is dropped.
set +e
"$VENV/bin/spark-submit" "${submit_args[@]}" --py-files "$lib_zip" "${extra_args[@]}" \
  "$ROOT/jobs/$job.py" "${job_args[@]}" \
  2> >(grep -v --line-buffered '^WARNING: Using incubator modules' >&2) \
  | awk '/^error: /{ print > "/dev/stderr"; fflush("/dev/stderr"); next } { print; fflush() }'
status=${PIPESTATUS[0]}
wait
exit "$status"
