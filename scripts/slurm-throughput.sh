#!/usr/bin/env bash
# Slurm's side of the side-by-side throughput benchmark (issue 7, BENCHMARKS.md): submits N held
# one-CPU jobs (`true`) to the Slurm of `scripts/slurm.sh start` one `sbatch` at a time, then
# releases them all at once and waits until every one has run. Prints submissions/s and jobs
# scheduled and run per second, and sdiag's main-scheduler figures.
#
#   scripts/slurm-throughput.sh 10000
set -euo pipefail
n=${1:-10000}
export SLURM_CONF=${SLURM_CONF:-/tmp/suanwang-slurm/etc/slurm.conf}
name=swbench-$$
sdiag -r >/dev/null
t0=$(date +%s.%N)
for _ in $(seq 1 "$n"); do
  sbatch --parsable --hold -J "$name" -c 1 --mem=10M -t 1 -o /dev/null --wrap=true >/dev/null
done
t1=$(date +%s.%N)
ids=$(squeue -h -n "$name" -o %i | paste -sd,)
t2=$(date +%s.%N)
scontrol release "$ids"
while [ "$(squeue -h -n "$name" -t PD,R,CG,CF | wc -l)" != 0 ]; do sleep 0.5; done
t3=$(date +%s.%N)
echo "jobs=$n submit_s=$(echo "$t1 - $t0" | bc) submissions_per_s=$(echo "$n / ($t1 - $t0)" | bc -l | cut -c1-7)"
echo "run_s=$(echo "$t3 - $t2" | bc) jobs_per_s=$(echo "$n / ($t3 - $t2)" | bc -l | cut -c1-7)"
sdiag | grep -A8 "^Main schedule statistics" | grep -E "Last cycle|Mean cycle|Cycles per|Last queue|Total cycles" || true
