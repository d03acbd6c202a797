#!/bin/sh
# The three benchmarks in one go; each measures the console against a direct client of the same
# backend in the same run, so their ratios hold on a busy machine. The load average is printed
# before each one.
#
#   bench/run_all.sh                        # .venv/bin/python, embedded backend, default sizes
#   PYTHON=/path/to/python PAGES_ARGS="--think-seconds 300" bench/run_all.sh
#
# Extra options per bench: PAGES_ARGS, DIRECT_IO_ARGS, UPLOAD_ARGS (e.g. --backend-url for a real Hanami).
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
echo "== pages (load average $(cut -d' ' -f1-3 /proc/loadavg))"
$PY bench/pages_bench.py $PAGES_ARGS
echo
echo "== direct IO (load average $(cut -d' ' -f1-3 /proc/loadavg))"
$PY bench/direct_io_bench.py $DIRECT_IO_ARGS
echo
echo "== upload (load average $(cut -d' ' -f1-3 /proc/loadavg))"
$PY bench/upload_bench.py $UPLOAD_ARGS
