#!/usr/bin/env bash
# Server time of every dashboard page (time to first byte from localhost, median of RUNS) and the
# overview's bytes transferred (HTML, style, script), against a running server.
#
#   scripts/dashboard-times.sh URL TOKEN [RUNS]
# e.g. with a store of 100,000 jobs (BENCHMARKS.md):
#   SUANWANG_ADMIN_TOKEN=sw_admin target/release/suanwang serve --data-dir /tmp/sw100k --listen 127.0.0.1:18090 &
#   scripts/dashboard-times.sh http://127.0.0.1:18090 sw_admin 7
set -euo pipefail
url=${1:?usage: scripts/dashboard-times.sh URL TOKEN [RUNS]}
token=${2:?usage: scripts/dashboard-times.sh URL TOKEN [RUNS]}
runs=${3:-7}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-28s %8s %10s %s\n" page "median ms" bytes "runs (ms)"
for page in / /pools /jobs "/jobs?state=queued" "/jobs?state=failed" "/jobs?after=50000" /jobs/1 /market /vouchers /money /audit /simulations; do
  times=()
  for _ in $(seq "$runs"); do
    t=$(curl -s -o /dev/null -w '%{time_starttransfer}' -b "sw_token=$token" "$url/ui$page")
    times+=("$(awk -v t="$t" 'BEGIN {printf "%.1f", t * 1000}')")
  done
  bytes=$(curl -s -o /dev/null -w '%{size_download}' -b "sw_token=$token" "$url/ui$page")
  printf "%-28s %8s %10s %s\n" "$page" "$(printf '%s\n' "${times[@]}" | median)" "$bytes" "${times[*]}"
done
html=$(curl -s -o /dev/null -w '%{size_download}' -b "sw_token=$token" "$url/ui/")
css=$(curl -s -o /dev/null -w '%{size_download}' "$url/ui/assets/app.css")
js=$(curl -s -o /dev/null -w '%{size_download}' "$url/ui/assets/app.js")
echo "overview transferred: html $html + css $css + js $js = $((html + css + js)) bytes (uncompressed)"
