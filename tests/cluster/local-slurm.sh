#!/usr/bin/env bash
# A real one-node SLURM (slurmctld, slurmd, slurmdbd on MariaDB, munge) on loopback,
# for the cluster tests.  Usage: local-slurm.sh start|stop|status
#
# Runs as root.  Installs Debian's packages only when missing.  Everything it writes
# (configs, pids, logs, spool, database) lives under $BLURBENCH_SLURM_DIR
# (default /tmp/blurbench-slurm), except one symlink /etc/slurm/slurm.conf -> that
# config: snakemake's jobstep plugin drops SLURM_CONF before its nested `srun`, so the
# commands inside a job must find the config at the default path.  `stop` removes it.
# The daemons are started here (apt does not start them on this machine) and stopped
# by the pids they recorded.
set -euo pipefail

DIR=${BLURBENCH_SLURM_DIR:-/tmp/blurbench-slurm}
CPUS=${BLURBENCH_SLURM_CPUS:-2}
DEFMEM=${BLURBENCH_SLURM_DEFMEM:-1000}   # MB per CPU for jobs that ask for none
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
ETC_CONF=/etc/slurm/slurm.conf
# daemon name -> pid file, in start order (stop goes in reverse)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)
declare -A PIDFILE=(
  [munged]=$DIR/munge/munged.pid
  [mariadbd]=$DIR/mysql/mariadbd.pid
  [slurmdbd]=$DIR/run/slurmdbd.pid
  [slurmctld]=$DIR/run/slurmctld.pid
  [slurmd]=$DIR/run/slurmd.pid
)
export SLURM_CONF=$DIR/etc/slurm.conf
export MYSQL_UNIX_PORT=$DIR/mysql/mysqld.sock

say() { echo "local-slurm: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Print the last lines of every log, so a failed start says why.
show_logs() {
  local f
  for f in "$DIR"/log/*.log "$DIR"/munge/munged.log "$DIR"/mysql/mariadb.log; do
    [[ -s $f ]] || continue
    echo "--- $f" >&2
    tail -n 15 "$f" >&2
  done
}

# pid of a running daemon from its pid file, or nothing.  Checks the process name,
# so a stale pid file never makes us signal an unrelated process.
daemon_pid() {
  local name=$1 file=${PIDFILE[$1]} pid
  [[ -r $file ]] || return 0
  pid=$(tr -dc '0-9' <"$file")
  [[ -n $pid && -r /proc/$pid/comm ]] || return 0
  [[ $(cat "/proc/$pid/comm") == "$name" ]] && echo "$pid"
  return 0
}

# Poll a command until it succeeds; on timeout, show the logs and fail.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { show_logs; die "$what not ready after ${seconds}s"; }
    sleep 0.5
  done
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

real_memory() {
  slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p'
}

render() {
  sed -e "s|@DIR@|$DIR|g" -e "s|@CPUS@|$CPUS|g" -e "s|@MEM@|$1|g" -e "s|@DEFMEM@|$DEFMEM|g" \
    "$HERE/$2.in" >"$DIR/etc/$2"
}

link_etc_conf() {
  if [[ -e $ETC_CONF || -L $ETC_CONF ]]; then
    [[ -L $ETC_CONF && $(readlink "$ETC_CONF") == "$SLURM_CONF" ]] && return 0
    die "$ETC_CONF already exists and is not ours; refusing to replace another SLURM's config"
  fi
  mkdir -p /etc/slurm
  ln -s "$SLURM_CONF" "$ETC_CONF"
}

unlink_etc_conf() {
  if [[ -L $ETC_CONF && $(readlink "$ETC_CONF") == "$SLURM_CONF" ]]; then
    rm -f "$ETC_CONF"
  fi
}

prepare_dirs() {
  local mem
  mkdir -p "$DIR"/{etc,run,log,state/slurmctld,state/slurmd,munge,mysql}
  chmod 755 "$DIR"
  mem=$(real_memory)
  [[ -n $mem ]] || die "could not read RealMemory from 'slurmd -C'"
  render "$mem" slurm.conf
  render "$mem" slurmdbd.conf
  render "$mem" gres.conf
  chmod 600 "$DIR/etc/slurmdbd.conf"   # slurmdbd refuses a readable config (it may hold a password)
  if [[ ! -s $DIR/munge/munge.key ]]; then
    mungekey --create --keyfile="$DIR/munge/munge.key"
  fi
  chown -R munge:munge "$DIR/munge"
  chmod 600 "$DIR/munge/munge.key"
  chmod 755 "$DIR/munge"
  chown mysql:mysql "$DIR/mysql"
}

start_munge() {
  runuser -u munge -- munged \
    --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="${PIDFILE[munged]}" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed" </dev/null >/dev/null 2>&1
  wait_for munged 15 munge --socket="$DIR/munge/munge.socket" --no-input
}

start_mariadb() {
  if [[ ! -d $DIR/mysql/data/mysql ]]; then
    mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/mysql/data" \
      --auth-root-authentication-method=socket --skip-test-db \
      >"$DIR/log/mariadb-install.log" 2>&1 || { show_logs; die "mariadb-install-db failed"; }
  fi
  # --skip-networking: the database is reached through its socket only.
  setsid mariadbd --no-defaults --user=mysql --datadir="$DIR/mysql/data" \
    --socket="$MYSQL_UNIX_PORT" --pid-file="${PIDFILE[mariadbd]}" --skip-networking \
    --log-error="$DIR/mysql/mariadb.log" --innodb-buffer-pool-size=64M \
    </dev/null >/dev/null 2>&1 &
  wait_for mariadbd 60 mariadb-admin --no-defaults --socket="$MYSQL_UNIX_PORT" ping
}

start_slurmdbd() {
  slurmdbd </dev/null >/dev/null 2>&1
  wait_for slurmdbd 30 sacctmgr -n list cluster
  if [[ -z $(sacctmgr -n -P list cluster format=cluster where cluster=blurbench) ]]; then
    sacctmgr -i add cluster blurbench >/dev/null
  fi
}

node_ready() {
  [[ $(sinfo -h -n localhost -o %t) =~ ^(idle|mix|alloc) ]]
}

start() {
  local t0=$SECONDS name down=0
  for name in "${DAEMONS[@]}"; do [[ -n $(daemon_pid "$name") ]] || down=1; done
  if ((down == 0)); then
    wait_for "node localhost" 60 node_ready
    say "already running (SLURM_CONF=$SLURM_CONF)"
    return 0
  fi
  stop_daemons   # a partial cluster from an earlier run: start clean
  # A start that fails half-way leaves nothing running.
  trap 'say "start failed; stopping what was started"; stop_daemons; unlink_etc_conf' EXIT
  install_packages
  prepare_dirs
  link_etc_conf
  start_munge
  start_mariadb
  start_slurmdbd
  # The node comes from slurm.conf, not from a saved state that may hold an old DRAIN.
  rm -f "$DIR"/state/slurmctld/node_state*
  slurmctld </dev/null >/dev/null 2>&1
  slurmd -N localhost </dev/null >/dev/null 2>&1
  wait_for "node localhost" 60 node_ready
  trap - EXIT
  say "up in $((SECONDS - t0))s: $(sinfo -V), node localhost with $CPUS CPUs (SLURM_CONF=$SLURM_CONF)"
}

# SIGTERM to the named daemons together, then wait for all; SIGKILL whoever is left after 30 s.
stop_group() {
  local name pid pids=() i alive
  for name in "$@"; do
    pid=$(daemon_pid "$name")
    if [[ -n $pid ]]; then
      pids+=("$pid")
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 300; i++)); do
    alive=0
    for pid in "${pids[@]}"; do [[ -d /proc/$pid ]] && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    [[ -d /proc/$pid ]] || continue
    say "pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ignored SIGTERM for 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

stop_daemons() {
  local i
  if [[ -n $(daemon_pid slurmctld) ]]; then
    # Cancel jobs first, so no slurmstepd outlives slurmd.
    squeue -h -o %i 2>/dev/null | xargs -r scancel --full --quiet 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
      [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.5
    done
  fi
  # SLURM first (slurmctld reports to slurmdbd on the way down), then what it relies on.
  stop_group slurmd slurmctld slurmdbd
  stop_group mariadbd munged
}

stop() {
  stop_daemons
  unlink_etc_conf
  say "stopped"
}

status() {
  local name pid rc=0
  for name in "${DAEMONS[@]}"; do
    pid=$(daemon_pid "$name")
    if [[ -n $pid ]]; then echo "$name running ($pid)"; else echo "$name stopped"; rc=3; fi
  done
  if ((rc == 0)); then echo "node localhost: $(sinfo -h -n localhost -o %T)"; fi
  return $rc
}

[[ $(id -u) == 0 ]] || die "must run as root (it installs packages and starts daemons)"
case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
