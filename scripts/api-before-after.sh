#!/usr/bin/env bash
# `bench api` against two builds of the server, interleaved, on SQLite and on PostgreSQL, each run
# on a fresh store (BENCHMARKS.md). The client is always CLIENT (default: the "after" build), so
# only the server differs.
#
#   scripts/api-before-after.sh BEFORE_BIN AFTER_BIN [ROUNDS] [JOBS]
#
# STORES="postgres" runs one store only.
# Prints one JSON line per run: {"build","store","round", ...bench api's JSON}.
set -euo pipefail
before=${1:?usage: scripts/api-before-after.sh BEFORE_BIN AFTER_BIN [ROUNDS] [JOBS]}
after=${2:?usage: scripts/api-before-after.sh BEFORE_BIN AFTER_BIN [ROUNDS] [JOBS]}
rounds=${3:-3}
jobs=${4:-20000}
client=${CLIENT:-$after}
pg=${PG:-postgres://postgres@127.0.0.1:5432}
port=18188
server="http://127.0.0.1:$port"

one() { # build-name binary store round
  local name=$1 bin=$2 store=$3 round=$4 dir db="" pid
  dir=$(mktemp -d)
  local args=(serve --data-dir "$dir" --listen "127.0.0.1:$port")
  if [ "$store" = postgres ]; then
    db="sw_bench_$$_${round}_${name}"
    psql -q "$pg/postgres" -c "CREATE DATABASE $db" >/dev/null
    args+=(--database-url "$pg/$db")
  fi
  SUANWANG_ADMIN_TOKEN=sw_admin "$bin" "${args[@]}" >/dev/null 2>"$dir/server.log" &
  pid=$!
  until curl -fs "$server/healthz" >/dev/null 2>&1; do sleep 0.05; done
  SUANWANG_SERVER=$server SUANWANG_TOKEN=sw_admin "$client" tenant create bench >/dev/null
  local result cpu_before cpu_after tick
  tick=$(getconf CLK_TCK)
  cpu_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  result=$("$client" bench api --server "$server" --token sw_admin --tenant bench --jobs "$jobs" --concurrency 32 --format json)
  cpu_after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  # The server's own CPU time for the run (user + system), a steadier figure than wall time on a
  # shared machine.
  local cpu_ms=$(( (cpu_after - cpu_before) * 1000 / tick ))
  echo "{\"build\":\"$name\",\"store\":\"$store\",\"round\":$round,\"server_cpu_ms\":$cpu_ms,\"result\":$result}"
  kill -TERM "$pid"; wait "$pid" || true
  if [ -n "$db" ]; then psql -q "$pg/postgres" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null; fi
  rm -rf "$dir"
}

for round in $(seq "$rounds"); do
  for store in ${STORES:-sqlite postgres}; do
    one before "$before" "$store" "$round"
    one after "$after" "$store" "$round"
  done
done
