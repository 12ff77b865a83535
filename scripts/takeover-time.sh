#!/usr/bin/env bash
# How long a standby takes to lead after the leader is SIGKILLed: two `serve` processes on one
# PostgreSQL database; kill the leader; poll the standby's /healthz until it says "leader".
#
#   scripts/takeover-time.sh [RUNS] [DATABASE_ADMIN_URL]
#
# Prints one line per run and the median, in milliseconds.
set -euo pipefail
runs=${1:-5}
admin=${2:-postgres://postgres@127.0.0.1:5432/test}
bin=${SUANWANG_BIN:-target/release/suanwang}
db=sw_takeover_$$
url="${admin%/*}/$db"
export PGOPTIONS="-c client_min_messages=warning"
cleanup() {
  pkill -f "serve --database-url $url" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
}
trap cleanup EXIT
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
role() { curl -s "http://127.0.0.1:$1/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["scheduler"])' 2>/dev/null || echo down; }
wait_role() { until [ "$(role "$1")" = "$2" ]; do sleep 0.02; done; }
times=()
for i in $(seq "$runs"); do
  "$bin" serve --database-url "$url" --listen 127.0.0.1:18101 2>/dev/null & a=$!
  wait_role 18101 leader
  "$bin" serve --database-url "$url" --listen 127.0.0.1:18102 2>/dev/null & b=$!
  wait_role 18102 standby
  sleep $((RANDOM % 3)).$((RANDOM % 10))   # land the kill anywhere in the standby's retry cycle
  start=$(date +%s%N)
  kill -9 "$a"; wait "$a" 2>/dev/null || true
  wait_role 18102 leader
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "run $i: standby led after $ms ms"
  times+=("$ms")
  kill "$b"; wait "$b" 2>/dev/null || true
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] " ms"}'
