#!/usr/bin/env bash
# A real single-machine Slurm for the Slurm backend's tests and for developers (issue 7):
# installs Debian's slurm-wlm and munge when missing, writes a configuration with a few nodes'
# worth of CPUs and GPUs (GRES backed by empty files; no devices needed), and starts munged,
# slurmctld and slurmd, and slurmdbd against the MariaDB on 127.0.0.1:3306 (root, no password;
# database suanwang_slurm_acct, made afresh with a fresh state directory) so `sacct` works. Without
# a reachable MariaDB it runs without slurmdbd: the job-completion log (jobcomp/filetxt) and
# `scontrol show job` only. SUANWANG_SLURM_DBD=1 requires slurmdbd (CI), =0 leaves it out.
#
#   scripts/slurm.sh start     # prints the environment to export (SLURM_CONF)
#   scripts/slurm.sh status
#   scripts/slurm.sh stop
#   scripts/slurm.sh reset     # stop, and forget every job (a restart otherwise keeps them, as a
#                              # real cluster does)
#   scripts/slurm.sh stop-controller | start-controller
#                              # slurmctld alone (slurmd and running jobs stay): for fault tests
#   scripts/slurm.sh stop-dbd | start-dbd
#                              # slurmdbd alone (sacct then says "Connection refused")
#   scripts/slurm.sh min-job-age SECONDS
#                              # how long the controller remembers a finished job (3600 at
#                              # start; a small value makes it forget jobs, for fault tests)
#
# slurmrestd (Debian's package, installed when missing) listens on 127.0.0.1:$SUANWANG_SLURMRESTD_PORT
# (default 16820) with JWT authentication, run as the unprivileged user `slurmrestd`; `start`
# also prints SUANWANG_SLURMRESTD (its URL) and SUANWANG_SLURMRESTD_TOKEN (a file holding a
# day's token of SlurmUser, root here). SUANWANG_SLURMRESTD=0 leaves it out.
#
# Everything lives under $SUANWANG_SLURM_DIR (default /tmp/suanwang-slurm). Needs root (as on
# this kind of machine and in CI): Slurm runs as root here (SlurmUser=root).
set -euo pipefail
dir=${SUANWANG_SLURM_DIR:-/tmp/suanwang-slurm}
nodes=${SUANWANG_SLURM_NODES:-2}
gpus=${SUANWANG_SLURM_GPUS:-4}
# NPUs (GRES npu, type 910b) on the node: partition `npu` holds them, for pools of Ascend cards.
npus=${SUANWANG_SLURM_NPUS:-4}
cpus=${SUANWANG_SLURM_CPUS:-8}
memory_mb=${SUANWANG_SLURM_MEMORY_MB:-16000}
conf="$dir/etc/slurm.conf"
dbd_conf="$dir/etc/slurmdbd.conf"
dbd_port=${SUANWANG_SLURM_DBD_PORT:-16819}
dbd_database=suanwang_slurm_acct
restd_port=${SUANWANG_SLURMRESTD_PORT:-16820}
mysql_cmd=(mariadb -h 127.0.0.1 -P 3306 -u root)

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "== installing slurm-wlm and munge" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >/dev/null
  fi
  if [ "${SUANWANG_SLURMRESTD:-1}" != 0 ] && ! command -v slurmrestd >/dev/null; then
    echo "== installing slurmrestd" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmrestd) >/dev/null
  fi
  if [ "${SUANWANG_SLURM_DBD:-auto}" != 0 ] && ! command -v slurmdbd >/dev/null; then
    echo "== installing slurmdbd" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmdbd mariadb-client) >/dev/null \
      || [ "${SUANWANG_SLURM_DBD:-auto}" != 1 ]
  fi
}

# Whether slurmdbd is used: SUANWANG_SLURM_DBD=1 (required), 0 (never), else when it and MariaDB are here.
use_dbd() {
  case "${SUANWANG_SLURM_DBD:-auto}" in
    0) return 1 ;;
    1) return 0 ;;
    *) command -v slurmdbd >/dev/null && "${mysql_cmd[@]}" -e 'select 1' >/dev/null 2>&1 ;;
  esac
}

configure() {
  mkdir -p "$dir"/{etc,spool/ctld,spool/d,log,run,gres}
  local host
  host=$(hostname -s)
  # Several slurmd on one machine need a build with multiple-slurmd support; Debian's has none,
  # so "a few nodes' worth" is one node carrying their sum.
  local node_cpus=$((cpus * nodes)) node_gpus=$((gpus * nodes)) node_memory=$((memory_mb * nodes))
  local accounting
  if use_dbd; then
    # GPUs and NPUs as tracked TRES: sacct's AllocTRES then says gres/gpu=N. Associations are
    # enforced, as at a real centre: a job must name an account its user belongs to.
    accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$host
AccountingStoragePort=$dbd_port
AccountingStorageTRES=gres/gpu,gres/npu
AccountingStorageEnforce=associations,limits,qos"
    cat >"$dbd_conf" <<DBD
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$dir/etc/jwt_hs256.key
DbdHost=$host
DbdPort=$dbd_port
SlurmUser=root
PidFile=$dir/run/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=root
StorageLoc=$dbd_database
DBD
    chmod 600 "$dbd_conf"
  else
    # Without slurmdbd, GPUs cannot be a tracked TRES ("slurmdbd is required to run with TRES
    # gres/gpu"): a job's GPUs are read from `scontrol show job -d` (GRES=gpu:sim:N(IDX:…)).
    accounting="AccountingStorageType=accounting_storage/none"
    rm -f "$dbd_conf"
  fi
  if [ ! -s "$dir/etc/jwt_hs256.key" ]; then
    dd if=/dev/urandom bs=32 count=1 of="$dir/etc/jwt_hs256.key" 2>/dev/null
  fi
  chmod 600 "$dir/etc/jwt_hs256.key"
  local files=""
  for i in $(seq 0 $((node_gpus - 1))); do
    : >"$dir/gres/gpu$i"
    files+="Name=gpu Type=sim File=$dir/gres/gpu$i"$'\n'
  done
  for i in $(seq 0 $((npus - 1))); do
    : >"$dir/gres/npu$i"
    files+="Name=npu Type=910b File=$dir/gres/npu$i"$'\n'
  done
  cat >"$conf" <<EOF
ClusterName=suanwang
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# JSON Web Tokens besides munge, for slurmrestd (scripts/slurm.sh token).
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$dir/etc/jwt_hs256.key
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
GresTypes=gpu,npu
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
$accounting
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
MaxJobCount=100000
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$node_cpus RealMemory=$node_memory Gres=gpu:sim:$node_gpus,npu:910b:$npus State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=npu Nodes=$host Default=NO MaxTime=INFINITE State=UP
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
  if [ -f "$dbd_conf" ]; then start_dbd; fi
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
      if [ "${SUANWANG_SLURMRESTD:-1}" != 0 ]; then start_restd; fi
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

# slurmrestd on 127.0.0.1:$restd_port as user slurmrestd (it refuses to run as root), and a
# token file for SlurmUser (root).
start_restd() {
  id slurmrestd >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin slurmrestd
  chmod 644 "$conf"
  SLURM_JWT=daemon SLURM_CONF="$conf" setsid setpriv --reuid=slurmrestd --regid=nogroup --clear-groups \
    slurmrestd -a rest_auth/jwt -s openapi/v0.0.38,openapi/dbv0.0.38 "127.0.0.1:$restd_port" \
    >"$dir/log/slurmrestd.log" 2>&1 </dev/null &
  echo $! >"$dir/run/slurmrestd.pid"
  (umask 077; SLURM_CONF="$conf" scontrol token lifespan=86400 >"$dir/etc/slurmrestd.token")
  for _ in $(seq 1 50); do
    if curl -sf -o /dev/null -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $(cut -d= -f2 "$dir/etc/slurmrestd.token")" \
      "http://127.0.0.1:$restd_port/slurm/v0.0.38/ping"; then
      echo "export SUANWANG_SLURMRESTD=http://127.0.0.1:$restd_port SUANWANG_SLURMRESTD_TOKEN=$dir/etc/slurmrestd.token"
      return 0
    fi
    sleep 0.1
  done
  echo "slurmrestd did not answer; its log:" >&2
  tail -n 5 "$dir/log/slurmrestd.log" >&2 || true
  return 1
}

# slurmdbd (reads slurmdbd.conf beside $SLURM_CONF), on a database made afresh when the
# controller's state is fresh: job ids start again at 1, and sacct must not see an earlier run's.
start_dbd() {
  if ! "${mysql_cmd[@]}" -e 'select 1' >/dev/null 2>&1 && [ -x /usr/sbin/mariadbd ]; then
    echo "== starting MariaDB" >&2
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 100); do "${mysql_cmd[@]}" -e 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  if ! "${mysql_cmd[@]}" -e 'select 1' >/dev/null 2>&1; then
    echo "slurmdbd needs the MariaDB on 127.0.0.1:3306 (root, no password), which does not answer" >&2
    return 1
  fi
  if [ ! -e "$dir/spool/ctld/job_state" ]; then
    "${mysql_cmd[@]}" -e "drop database if exists $dbd_database"
  fi
  slurmdbd
  for _ in $(seq 1 100); do
    if sacctmgr -n list cluster >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  if ! sacctmgr -n list cluster format=cluster | grep -qw suanwang; then
    sacctmgr -i add cluster suanwang >/dev/null
  fi
  tenants
}

# Two tenants as a centre sets them up for the platform (docs/slurm.md): a Unix user each (no
# login, no home) and a Slurm account each with that user in it.
tenants() {
  local t
  for t in acme beta; do
    id "sw-$t" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "sw-$t"
    if ! sacctmgr -n -P list account "$t" format=account | grep -qx "$t"; then
      sacctmgr -i add account "$t" cluster=suanwang >/dev/null
    fi
    if ! sacctmgr -n -P list assoc user="sw-$t" account="$t" format=user | grep -qx "sw-$t"; then
      sacctmgr -i add user "sw-$t" account="$t" cluster=suanwang >/dev/null
    fi
  done
}

stop_daemons() {
  for pidfile in "$dir/run/slurmrestd.pid" "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid" "$dir/run/slurmdbd.pid"; do
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
  stop-dbd)
    if [ -s "$dir/run/slurmdbd.pid" ] && kill "$(cat "$dir/run/slurmdbd.pid")" 2>/dev/null; then
      for _ in $(seq 1 50); do pgrep -x slurmdbd >/dev/null || break; sleep 0.1; done
    fi
    echo "stopped slurmdbd" ;;
  start-dbd) SLURM_CONF="$conf" start_dbd; echo "started slurmdbd" ;;
  min-job-age)
    [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "usage: scripts/slurm.sh min-job-age SECONDS" >&2; exit 2; }
    sed -i "s/^MinJobAge=.*/MinJobAge=$2/" "$conf"
    SLURM_CONF="$conf" scontrol reconfigure ;;
  start-controller) start_controller ;;
  stop) stop_daemons ;;
  reset)
    stop_daemons quiet
    rm -rf "$dir"
    if "${mysql_cmd[@]}" -e 'select 1' >/dev/null 2>&1; then
      "${mysql_cmd[@]}" -e "drop database if exists $dbd_database"
    fi
    echo "stopped and removed $dir" ;;
  status) SLURM_CONF="$conf" sinfo && SLURM_CONF="$conf" squeue ;;
  *) echo "usage: scripts/slurm.sh start|stop|reset|status|stop-controller|start-controller|stop-dbd|start-dbd|min-job-age SECONDS" >&2; exit 2 ;;
esac
