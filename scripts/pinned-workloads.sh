#!/usr/bin/env bash
# The model-pinned workloads of issue 20: 5, 10, 20, 25 and 33 % of the GPU tasks of
# openb_pod_list_default.csv pinned to one or two models (scripts/pin-models.py, seed 1), written
# to DIR as openb_pod_list_gpuspec{05,10,20,25,33}.csv. Never commit them (they derive from the
# shared traces).
#
#   scripts/pinned-workloads.sh /tmp/pinned [TRACES_DIR]
#   PIN_MODELS=uniform scripts/pinned-workloads.sh /tmp/pinned-uniform   # models drawn alike
set -euo pipefail
out=${1:?usage: scripts/pinned-workloads.sh DIR [TRACES_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
traces=${2:-$here/../../shared/traces/alibaba-gpu-v2023}
mkdir -p "$out"
for pct in 05 10 20 25 33; do
  python3 "$here/pin-models.py" --nodes "$traces/openb_node_list_gpu_node.csv" \
    --tasks "$traces/openb_pod_list_default.csv" --share "0.$pct" --seed 1 --models "${PIN_MODELS:-by-gpus}" \
    >"$out/openb_pod_list_gpuspec$pct.csv"
done
ls "$out"
