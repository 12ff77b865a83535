#!/usr/bin/env bash
# Issue 15's number: one well-behaved tenant's p99 submission latency alone and while 20 tenants
# each send ten times their rate limit and 2,000 idle sockets are held open (`suanwang bench
# abuse`), on SQLite and on PostgreSQL. Each store gets a fresh server (the default federation
# with no agents: accepted jobs queue, so what is measured is the API's path, not job runs) and
# RUNS rounds; the medians are printed last.
#
#   scripts/bench-abuse.sh [RUNS] [DATABASE_ADMIN_URL]
set -euo pipefail
runs=${1:-5}
admin=${2:-postgres://postgres@127.0.0.1:5432/test}
bin=${SUANWANG_BIN:-target/release/suanwang}
port=18188
token=sw_benchabuse$$0000000000000000
db=sw_abuse_$$
dir=$(mktemp -d)
export PGOPTIONS="-c client_min_messages=warning"
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
results=$dir/results.jsonl
for store in sqlite postgres; do
  args=(serve --listen 127.0.0.1:$port --data-dir "$dir/$store")
  if [ "$store" = postgres ]; then
    psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
    args+=(--database-url "${admin%/*}/$db")
  fi
  SUANWANG_ADMIN_TOKEN=$token "$bin" "${args[@]}" 2>"$dir/$store.log" & server=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
  for i in $(seq "$runs"); do
    line=$("$bin" bench abuse --server "http://127.0.0.1:$port" --token "$token" --format json)
    echo "$store $line"
    echo "{\"store\": \"$store\", \"run\": $line}" >>"$results"
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for store in ("sqlite", "postgres"):
    runs = [r["run"] for r in rows if r["store"] == store]
    med = lambda f: statistics.median(f(r) for r in runs)
    print(f"{store}: {len(runs)} runs; median p99 alone {med(lambda r: r['baseline']['latency_ms_p99']):.2f} ms, "
          f"under abuse {med(lambda r: r['under_abuse']['latency_ms_p99']):.2f} ms, "
          f"median ratio {med(lambda r: r['p99_ratio']):.2f} "
          f"(worst {max(r['p99_ratio'] for r in runs):.2f}); abusers sent {med(lambda r: r['abuse_requests_per_s']):.0f}/s, "
          f"{med(lambda r: r['abuse_limited'])} refused 429, {med(lambda r: r['abuse_accepted'])} accepted, "
          f"{med(lambda r: r['abuse_other'])} other")
PY
