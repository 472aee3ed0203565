#!/usr/bin/env bash
# A single-node SLURM cluster with accounting on this machine, for the SLURM tests and for
# trying the `submitit_slurm` launcher without a real cluster (docs/cluster.md).
#
#   scripts/slurm-local.sh up      install the packages if missing, configure, start; idempotent
#   scripts/slurm-local.sh down    cancel every job, stop the daemons, remove the state
#   scripts/slurm-local.sh status  daemons, partitions, queue; exit 0 only when jobs can run
#
# Needs root on Debian 12 (or alike) and works without systemd: every daemon is started
# directly and daemonizes itself. What runs: munged (authentication) -> MariaDB -> slurmdbd
# (accounting, so `sacct` works) -> slurmctld (controller) -> slurmd (this node).
# Partitions: `cpu` (default; preempted jobs are requeued) and `high` (preempts `cpu`).
#
# Settings from the environment:
#   SLURM_LOCAL_DIR   all state: spool, pid files, daemon logs, the DB (/var/spool/slurm-local)
#   SLURM_LOCAL_LOG   this script's own log; outside SLURM_LOCAL_DIR so that it survives `down`
#                     (/var/log/slurm-local.log)
#   SLURM_GRACE_S     GraceTime of partition `cpu`, seconds (30): see the partition lines below
#   KEEP_STATE=1      `down` keeps SLURM_LOCAL_DIR (job history, DB)
set -euo pipefail

BASE=${SLURM_LOCAL_DIR:-/var/spool/slurm-local}
LOG=${SLURM_LOCAL_LOG:-/var/log/slurm-local.log}
GRACE_S=${SLURM_GRACE_S:-30}
NODE=$(hostname -s)
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
T0=$(date +%s)
STEP="starting"

say() { echo "slurm-local: $*"; echo "$(date '+%F %T') $*" >>"$LOG"; }
# For up/down: any command that fails under `set -e` ends here, with one line naming the step
# instead of a wall of output (the output is in the log).
on_exit() { local rc=$?; [ $rc -eq 0 ] || [ "${FAILED_REPORTED:-0}" = 1 ] || fail "$STEP (exit $rc)"; }
fail() { FAILED_REPORTED=1
         echo "slurm-local: FAILED: $* (log: $LOG; daemon logs: $BASE/log)" >&2
         echo "$(date '+%F %T') FAILED: $*" >>"$LOG"; exit 1; }
# run CMD...: run quietly, its output into the log
run() { echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

# Probes of a dead slurmctld take ~9 s to give up, so every probe runs under `timeout 3`.
probe() { timeout 3 "$@" >/dev/null 2>&1; }
# wait_for SECONDS WHAT CMD...: retry CMD until it succeeds, or fail naming WHAT.
wait_for() {
  local secs=$1 what=$2; local end=$(( $(date +%s) + secs )); shift 2
  until probe "$@"; do
    [ "$(date +%s)" -lt "$end" ] || fail "timed out after $secs s waiting for $what"
    sleep 0.3
  done
}
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# The node takes jobs: idle, or already running some (mixed/allocated); not down/drained.
node_ok() { local s; s=$(timeout 3 sinfo -h -n "$NODE" -p cpu -o %t 2>/dev/null) || return 1
            case $s in idle|mix|alloc) return 0;; *) return 1;; esac; }
export -f node_ok; export NODE

write_if_changed() {  # write_if_changed FILE MODE < content: 0 when FILE changed
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  install -m "$2" "$tmp" "$1"; rm -f "$tmp"; return 0
}

slurm_conf() {
  # This host's real CPU layout (sockets, cores, threads) as slurmd sees it; RealMemory a
  # little below the real total, else slurmd reports less than configured and the node drains.
  local hw mem
  hw=$(slurmd -C | head -1 | sed 's/ RealMemory=[0-9]*//')
  mem=$(awk '/MemTotal/ {printf "%d", $2/1024*0.92}' /proc/meminfo)
  cat <<EOF
# Written by scripts/slurm-local.sh: a one-node test cluster. Edits are overwritten by 'up'.
ClusterName=local
# Pinned to loopback: the hostname may not resolve, and nothing outside this machine is needed.
SlurmctldHost=$NODE(127.0.0.1)
# Daemons and jobs as root: a test machine with one user, no slurm account needed.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No mail server here; the default MailProg would fail on every job end.
MailProg=/bin/true
# No systemd and no writable cgroup hierarchy in these machines: track processes by the
# process table and do no CPU binding (the cgroup plugins refuse to start).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Accounting through slurmdbd: without it 'sacct' fails and submitit cannot tell that a job
# died without a result, so the Hydra launcher would wait for it forever.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
# Cores and memory are the consumable resources, so two 1-CPU jobs run side by side.
SelectTypeParameters=CR_Core_Memory
# A job without --mem would otherwise take all the node's memory and run alone.
DefMemPerCPU=1000
# A node that was down (e.g. slurmd restarted) takes jobs again as soon as it registers.
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job ends (time limit, scancel, after GraceTime);
# the default 30 s only makes the timeout/kill tests slower.
KillWait=10
StateSaveLocation=$BASE/ctld
SlurmdSpoolDir=$BASE/d
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
# Preemption by partition priority: a job in 'high' takes the node from jobs in 'cpu'.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# Send the job's own --signal (submitit asks for USR2) at preemption, so the job can
# checkpoint and requeue itself within GraceTime; SLURM 22.05 spells this here
# (PreemptParameters does not exist yet).
SlurmctldParameters=preempt_send_user_signal
$hw NodeAddr=127.0.0.1 RealMemory=$mem State=UNKNOWN
# cpu: the default partition; a preempted job gets the signal, then GraceTime seconds to
# checkpoint before SIGTERM/SIGKILL, and is requeued. ${GRACE_S} s: our jobs checkpoint in a
# few seconds even on a busy 2-core machine, and the preemption tests wait at most this long
# (the SLURM default of 0 would kill jobs before they can save anything).
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=$GRACE_S
# high: a higher PriorityTier preempts 'cpu'; its own jobs are never preempted.
PartitionName=high Nodes=$NODE MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
}

slurmdbd_conf() {
  cat <<EOF
# Written by scripts/slurm-local.sh. Accounting into the private MariaDB (unix socket only).
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$BASE/run/slurmdbd.pid
LogFile=$BASE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=root
EOF
}

up() {
  [ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts daemons)"
  mkdir -p "$(dirname "$LOG")"; : >>"$LOG"
  say "up (log: $LOG)"
  [[ $GRACE_S =~ ^[0-9]+$ ]] || fail "SLURM_GRACE_S must be whole seconds, got '$GRACE_S'"

  STEP="installing packages"
  local pkgs="munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
  if ! dpkg -s $pkgs >/dev/null 2>&1; then
    say "installing $pkgs (about 20 s)"
    # policy-rc.d stops the packages' init scripts from starting the services half-configured:
    # this script starts them itself, in order.
    local prc=/usr/sbin/policy-rc.d made_prc=0
    [ -e $prc ] || { printf '#!/bin/sh\nexit 101\n' >$prc; chmod +x $prc; made_prc=1; }
    run apt-get update -qq || { [ $made_prc = 1 ] && rm -f $prc; fail "apt-get update"; }
    DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq --no-install-recommends $pkgs \
      || { [ $made_prc = 1 ] && rm -f $prc; fail "apt-get install $pkgs"; }
    [ $made_prc = 1 ] && rm -f $prc
  fi

  STEP="preparing directories"
  mkdir -p "$BASE"/{ctld,d,log,run} /etc/slurm /run/munge /run/mysqld
  chown munge:munge /run/munge; chown mysql:mysql /run/mysqld

  STEP="starting munged"
  # The package creates the key; make one if it is missing (e.g. a trimmed image).
  [ -s /etc/munge/munge.key ] || run mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  if ! probe bash -c 'munge -n </dev/null | unmunge'; then
    say "starting munged"
    run runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    wait_for 10 munged bash -c 'munge -n </dev/null | unmunge'
  fi

  STEP="writing $CONF"
  local changed=0
  slurm_conf | write_if_changed "$CONF" 644 && changed=1
  slurmdbd_conf | write_if_changed "$DBD_CONF" 600 || true   # slurmdbd refuses a readable one

  STEP="starting MariaDB"
  if [ ! -d "$BASE/mysql/mysql" ]; then
    say "creating the accounting database"
    run mariadb-install-db --user=mysql --datadir="$BASE/mysql" --skip-test-db
  fi
  if ! probe mysqladmin ping; then
    say "starting MariaDB"
    # Its pid file and socket in /run/mysqld (the packaged paths, owned by mysql above).
    setsid mariadbd --user=mysql --datadir="$BASE/mysql" --skip-networking \
      --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mariadbd.pid \
      --log-error="$BASE/log/mariadb.log" </dev/null >/dev/null 2>&1 &
    wait_for 30 "MariaDB ($BASE/log/mariadb.log)" mysqladmin ping
  fi

  STEP="starting slurmdbd"
  if ! alive "$BASE/run/slurmdbd.pid"; then
    say "starting slurmdbd"
    run slurmdbd
    wait_for 30 "slurmdbd ($BASE/log/slurmdbd.log)" sacctmgr -n show cluster
  fi
  # The cluster must be registered before slurmctld starts, or it has no accounting.
  if [ -z "$(timeout 10 sacctmgr -n -P show cluster local format=cluster 2>/dev/null)" ]; then
    run timeout 10 sacctmgr -i -Q add cluster local
  fi

  STEP="starting slurmctld and slurmd"
  local started=0
  if ! alive "$BASE/run/slurmctld.pid"; then say "starting slurmctld"; run slurmctld; started=1
  elif [ $changed = 1 ]; then say "slurm.conf changed: scontrol reconfigure"; run timeout 10 scontrol reconfigure
  fi
  if ! alive "$BASE/run/slurmd.pid"; then say "starting slurmd"; run slurmd; started=1; fi
  wait_for 60 "node $NODE to take jobs ($BASE/log/slurmd.log, slurmctld.log)" bash -c node_ok

  if [ $started = 1 ]; then
    STEP="running a test job"
    # One real job through slurmctld -> slurmd -> accounting proves the chain works.
    run timeout 60 srun -p cpu -t 1 -J slurm-local-check true
    say "up in $(( $(date +%s) - T0 )) s: node $NODE, partitions cpu (default, GraceTime ${GRACE_S} s), high"
  else
    say "already up ($(( $(date +%s) - T0 )) s): node $NODE, partitions cpu (default, GraceTime ${GRACE_S} s), high"
  fi
  timeout 3 sinfo || true
}

stop() {  # stop NAME:PIDFILE...: TERM them together, wait up to 15 s, then KILL what is left
  local d p i pids="" names=""
  for d in "$@"; do
    alive "${d#*:}" && { p=$(cat "${d#*:}"); kill "$p" 2>/dev/null || true; pids="$pids $p"; names="$names ${d%%:*}"; }
    rm -f "${d#*:}"
  done
  [ -n "$pids" ] || return 0
  say "stopping$names"
  for i in $(seq 75); do
    local left=""; for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
    [ -z "$left" ] && return 0; sleep 0.2
  done
  say "pids$left did not stop in 15 s: SIGKILL"; kill -9 $left 2>/dev/null || true
}

down() {
  [ "$(id -u)" = 0 ] || fail "must run as root"
  mkdir -p "$(dirname "$LOG")"; : >>"$LOG"
  STEP="cancelling jobs"
  if alive "$BASE/run/slurmctld.pid"; then
    # Cancel every job and wait (at most 30 s) until the queue is empty, so no job process
    # outlives slurmd (with proctrack/linuxproc slurmd is what kills them).
    local jobs i
    jobs=$(timeout 5 squeue -h -o %A 2>/dev/null | sort -u) || true
    if [ -n "$jobs" ]; then say "cancelling $(echo $jobs | wc -w) job(s)"; timeout 5 scancel --full $jobs || true; fi
    for i in $(seq 100); do [ -z "$(timeout 5 squeue -h 2>/dev/null)" ] && break; sleep 0.3; done
  fi
  STEP="stopping daemons"
  # SLURM's daemons first (slurmctld saves its state and reports to slurmdbd while stopping),
  # then what they depend on.
  stop slurmd:"$BASE/run/slurmd.pid" slurmctld:"$BASE/run/slurmctld.pid"
  stop slurmdbd:"$BASE/run/slurmdbd.pid" MariaDB:/run/mysqld/mariadbd.pid munged:/run/munge/munged.pid
  if [ "${KEEP_STATE:-0}" != 1 ]; then
    rm -rf "$BASE" "$CONF" "$DBD_CONF"
  fi
  say "down in $(( $(date +%s) - T0 )) s"
}

status() {
  local d f ok=0
  for d in "munged /run/munge/munged.pid" "mariadbd /run/mysqld/mariadbd.pid" \
           "slurmdbd $BASE/run/slurmdbd.pid" "slurmctld $BASE/run/slurmctld.pid" "slurmd $BASE/run/slurmd.pid"; do
    set -- $d
    if alive "$2"; then echo "  $1: running (pid $(cat "$2"))"; else echo "  $1: not running"; fi
  done
  if command -v sinfo >/dev/null && node_ok; then
    timeout 3 sinfo || true; echo; timeout 3 squeue || true
    echo "slurm-local: up (node $NODE takes jobs)"
  else
    echo "slurm-local: down (start it with: scripts/slurm-local.sh up)"; ok=1
  fi
  return $ok
}

case ${1:-} in
  up) trap on_exit EXIT; up ;;
  down) trap on_exit EXIT; down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
