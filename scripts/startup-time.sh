#!/usr/bin/env bash
# Time from `suanwang serve` start to a healthy /healthz, and to the scheduler having rebuilt its
# state, for an existing data directory (BENCHMARKS.md: 100,000 jobs in the store).
#
#   scripts/startup-time.sh DATA_DIR [RUNS]
set -euo pipefail
dir=${1:?usage: scripts/startup-time.sh DATA_DIR [RUNS]}
runs=${2:-5}
bin=${SUANWANG_BIN:-target/release/suanwang}
port=18099
for run in $(seq "$runs"); do
  log=$(mktemp)
  start=$(date +%s%N)
  "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" >/dev/null 2>"$log" &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.005; done
  healthy=$(( ($(date +%s%N) - start) / 1000000 ))
  until grep -q "scheduler: rebuilt" "$log"; do sleep 0.01; done
  rebuilt=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "run $run: healthy after ${healthy} ms; $(grep -o 'rebuilt [0-9]* open jobs from the store in [0-9]* ms' "$log"); scheduler ready after ${rebuilt} ms"
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$log"
done
