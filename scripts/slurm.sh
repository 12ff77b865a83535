#!/usr/bin/env bash
# A real single-machine Slurm for the Slurm backend's tests and for developers (issue 7):
# installs Debian's slurm-wlm and munge when missing, writes a configuration with a few nodes'
# worth of CPUs and GPUs (GRES backed by empty files; no devices needed), and starts munged,
# slurmctld and slurmd. Accounting is the job-completion log (jobcomp/filetxt) plus
# `scontrol show job`; no slurmdbd.
#
#   scripts/slurm.sh start     # prints the environment to export (SLURM_CONF)
#   scripts/slurm.sh status
#   scripts/slurm.sh stop
#   scripts/slurm.sh reset     # stop, and forget every job (a restart otherwise keeps them, as a
#                              # real cluster does)
#   scripts/slurm.sh stop-controller | start-controller
#                              # slurmctld alone (slurmd and running jobs stay): for fault tests
#
# Everything lives under $SUANWANG_SLURM_DIR (default /tmp/suanwang-slurm). Needs root (as on
# this kind of machine and in CI): Slurm runs as root here (SlurmUser=root).
set -euo pipefail
dir=${SUANWANG_SLURM_DIR:-/tmp/suanwang-slurm}
nodes=${SUANWANG_SLURM_NODES:-2}
gpus=${SUANWANG_SLURM_GPUS:-4}
cpus=${SUANWANG_SLURM_CPUS:-8}
memory_mb=${SUANWANG_SLURM_MEMORY_MB:-16000}
conf="$dir/etc/slurm.conf"

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "== installing slurm-wlm and munge" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >/dev/null
  fi
}

configure() {
  mkdir -p "$dir"/{etc,spool/ctld,spool/d,log,run,gres}
  local host
  host=$(hostname -s)
  # Several slurmd on one machine need a build with multiple-slurmd support; Debian's has none,
  # so "a few nodes' worth" is one node carrying their sum.
  local node_cpus=$((cpus * nodes)) node_gpus=$((gpus * nodes)) node_memory=$((memory_mb * nodes))
  local files=""
  for i in $(seq 0 $((node_gpus - 1))); do
    : >"$dir/gres/gpu$i"
    files+="Name=gpu Type=sim File=$dir/gres/gpu$i"$'\n'
  done
  cat >"$conf" <<EOF
ClusterName=suanwang
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${SUANWANG_SLURM_CTLD_PORT:-16817}
SlurmdPort=${SUANWANG_SLURM_D_PORT:-16818}
# Declared CPUs and memory are more than this machine has: use them as configured.
SlurmdParameters=config_overrides
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
# Without slurmdbd, GPUs cannot be a tracked TRES ("slurmdbd is required to run with TRES
# gres/gpu"): a job's GPUs are read from `scontrol show job -d` (GRES=gpu:sim:N(IDX:…)).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
MaxJobCount=100000
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$node_cpus RealMemory=$node_memory Gres=gpu:sim:$node_gpus State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  printf '%s' "$files" >"$dir/etc/gres.conf"
}

start_munge() {
  if pgrep -x munged >/dev/null; then return; fi
  mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  if id munge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged --force" || munged --force
  else
    munged --force
  fi
}

start() {
  install
  stop_daemons quiet
  configure
  start_munge
  export SLURM_CONF="$conf"
  slurmctld -f "$conf"
  slurmd -f "$conf"
  for _ in $(seq 1 60); do
    if ! pgrep -x slurmctld >/dev/null; then
      echo "slurmctld exited; its log:" >&2
      tail -n 5 "$dir/log/slurmctld.log" >&2 || true
      return 1
    fi
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "export SLURM_CONF=$conf"
      return 0
    fi
    # A node that registered before the controller knew it comes up DOWN; resume it.
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 1
  done
  echo "slurm did not come up; logs in $dir/log" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  return 1
}

stop_daemons() {
  for pidfile in "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid"; do
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  sleep 1
  [ "${1:-}" = quiet ] || echo "stopped slurmctld and slurmd ($dir)"
}

stop_controller() {
  local pidfile="$dir/run/slurmctld.pid"
  if [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
    for _ in $(seq 1 50); do pgrep -x slurmctld >/dev/null || break; sleep 0.1; done
  fi
  echo "stopped slurmctld"
}

start_controller() {
  SLURM_CONF="$conf" slurmctld -f "$conf"
  for _ in $(seq 1 100); do
    SLURM_CONF="$conf" scontrol ping >/dev/null 2>&1 && { echo "started slurmctld"; return 0; }
    sleep 0.1
  done
  echo "slurmctld did not come back; its log: $dir/log/slurmctld.log" >&2
  return 1
}

case "${1:-}" in
  start) start ;;
  stop-controller) stop_controller ;;
  start-controller) start_controller ;;
  stop) stop_daemons ;;
  reset) stop_daemons quiet; rm -rf "$dir"; echo "stopped and removed $dir" ;;
  status) SLURM_CONF="$conf" sinfo && SLURM_CONF="$conf" squeue ;;
  *) echo "usage: scripts/slurm.sh start|stop|reset|status|stop-controller|start-controller" >&2; exit 2 ;;
esac
