#!/usr/bin/env bash
# Made crates/suanwang-control/tests/golden/history-9d96371.sqlite with the binary of commit 9d96371:
#   scripts/golden-history.sh target/release/suanwang /tmp/golden-out
# Writes a small platform history with a given suanwang binary (the golden history fixture).
set -euo pipefail
BIN=${1:?binary}; OUT=${2:?out dir}
D=$(mktemp -d); PORT=18089; URL=http://127.0.0.1:$PORT
"$BIN" serve --demo --data-dir "$D" --listen 127.0.0.1:$PORT >"$D/serve.log" 2>&1 &
PID=$!; trap "kill $PID 2>/dev/null || true" EXIT
for _ in $(seq 1 100); do curl -sf $URL/healthz >/dev/null && break; sleep 0.2; done
OP=$(python3 -c "import json;print(json.load(open('$D/demo-tokens.json'))['operator'])")
DEMO=$(python3 -c "import json;print(json.load(open('$D/demo-tokens.json'))['tenant'])")
api() { local tok=$1 method=$2 path=$3; shift 3; curl -sS -X "$method" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' "$@" "$URL$path"; echo; }
api $OP POST /api/v1/tenants -d '{"name":"acme","kind":"startup","registration_city":"Shenzhen"}'
ACME=$(api $OP POST /api/v1/tokens -d '{"role":"tenant","tenant":"acme","label":"acme"}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
PROV=$(api $OP POST /api/v1/tokens -d '{"role":"provider","pool":"shaoguan-telecom","label":"st"}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
SUANWANG_SERVER=$URL SUANWANG_TOKEN=$OP "$BIN" program load examples/programs/shenzhen.toml
api $ACME POST /api/v1/programs/shenzhen-training/applications -d '{}'
api $OP POST /api/v1/applications/1/decision -d '{"approve":true,"reason":"eligible"}'
api $OP POST /api/v1/tenants/2/payments -d '{"amount_fen":10000000,"key":"pay-1"}'
# Jobs of every kind: whole cards, a fraction, CPU only, a gang, a local process, a template, a data set, one cancelled.
api $ACME POST /api/v1/jobs -H 'Idempotency-Key: k1' -d '{"name":"train8","accelerators":8,"duration_s":12,"estimate_s":3600}'
api $ACME POST /api/v1/jobs -d '{"name":"half","accelerators":1,"accelerator_milli":500,"duration_s":12}'
api $ACME POST /api/v1/jobs -d '{"name":"cpu","cpu_milli":4000,"memory_mib":8192,"duration_s":12}' || true
api $ACME POST /api/v1/jobs -d '{"name":"gang","accelerators":8,"tasks":2,"duration_s":12,"accelerator_models":["Ascend-910B"]}'
api $DEMO POST /api/v1/jobs -d '{"name":"hello","command":["sh","-c","echo hello"],"cpu_milli":100,"memory_mib":64,"pool":"local"}'
api $ACME POST /api/v1/datasets -d '{"name":"corpus","site":"shaoguan-hub","size_bytes":2000000000000}'
api $ACME POST /api/v1/jobs -d '{"template":"fine-tune","params":{"model":"qwen2-7b","dataset":"corpus","hours":1},"duration_s":12}'
api $ACME POST /api/v1/jobs -d '{"name":"latency","accelerators":1,"duration_s":12,"latency":{"site":"shenzhen-qianhai","max_ms":3.0},"residency_region":"CN-GD","green":true}'
api $ACME POST /api/v1/jobs -d '{"name":"long","accelerators":2,"duration_s":3600}'
api $ACME POST /api/v1/jobs -d '{"name":"cancelme","accelerators":4,"duration_s":3600}'
sleep 3
api $ACME POST /api/v1/jobs/9/cancel
# The market: the pool sells, acme buys, an auction makes a contract, a job runs under it.
START=$(( $(date +%s) + 4 )); END=$(( START + 86400 ))
api $PROV POST /api/v1/market/orders -H 'Idempotency-Key: s1' -d "{\"side\":\"sell\",\"start_s\":$START,\"end_s\":$END,\"cards\":16,\"limit_fen_per_card_hour\":700}"
MODEL=$(api $PROV GET /api/v1/market/prices | python3 -c 'import json,sys;print([p for p in json.load(sys.stdin)["pools"] if p["pool"]=="shaoguan-telecom"][0]["model"])')
REGION=$(api $PROV GET /api/v1/market/prices | python3 -c 'import json,sys;print([p for p in json.load(sys.stdin)["pools"] if p["pool"]=="shaoguan-telecom"][0]["region"])')
api $ACME POST /api/v1/market/orders -H 'Idempotency-Key: b1' -d "{\"side\":\"buy\",\"model\":\"$MODEL\",\"region\":\"$REGION\",\"start_s\":$START,\"end_s\":$END,\"cards\":8,\"limit_fen_per_card_hour\":900}"
api $OP POST /api/v1/market/auctions
sleep 5
api $ACME POST /api/v1/jobs -d '{"name":"contracted","accelerators":8,"duration_s":12,"contract":"contract:1"}'
sleep 16
# Claims and redemptions for the finished jobs.
api $ACME POST /api/v1/programs/shenzhen-training/claims -d '{"contract":"job:1","amount_fen":500000}'
PERIOD=$(python3 -c "import time;print(time.strftime('%Y-%m', time.gmtime(time.time()+8*3600)))")
api $ACME POST /api/v1/claims/1/redemptions -d "{\"period\":\"$PERIOD\",\"job\":1}"
P1=$(api $OP GET /api/v1/jobs/1 | python3 -c 'import json,sys;print(json.load(sys.stdin)["pool"])')
api $OP POST /api/v1/pools/$P1/payouts -d '{"amount_fen":100,"key":"po-1"}' || true
mkdir -p "$OUT"
for path in /api/v1/jobs?limit=1000 /api/v1/invoices /api/v1/ledger/trial-balance /api/v1/tenants/2/balance /api/v1/claims /api/v1/market/contracts /api/v1/programs/shenzhen-training; do
  echo "== $path"; api $OP GET "$path"
done > "$OUT/seen.txt"
kill -TERM $PID; wait $PID || true
sqlite3 "$D/suanwang.db" 'VACUUM;' 2>/dev/null || python3 -c "import sqlite3;c=sqlite3.connect('$D/suanwang.db');c.execute('VACUUM');c.close()"
cp "$D/suanwang.db" "$OUT/history.sqlite"
ls -la "$OUT"
