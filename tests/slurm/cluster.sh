#!/usr/bin/env bash
# Bring up / tear down a real single-node SLURM cluster on localhost, for the
# `slurm` tests of the remaster workflow (see tests/slurm/README.md).
#
#   bash tests/slurm/cluster.sh up       # install (if needed) + start, wait for idle node
#   bash tests/slurm/cluster.sh down     # stop only the daemons this script started
#   bash tests/slurm/cluster.sh status   # print daemons + sinfo
#
# Must run as root (it writes /etc/slurm/slurm.conf, starts munged/slurmctld/slurmd).
# Both `up` and `down` are idempotent.
#
# The node advertises two fake GPUs (gres gpu:fake:2, backed by /dev/null and
# /dev/zero), so `--gpus=1` jobs get CUDA_VISIBLE_DEVICES=0 or 1 like on a real
# GPU node.  There is no slurmdbd (no accounting): use `squeue`, not `sacct`,
# to follow jobs; finished jobs stay visible to squeue/scontrol for MinJobAge.
#
# Environment knobs:
#   REMASTER_SLURM_DIR        state/log/pid directory   (default /tmp/remaster-slurm)
#   REMASTER_SLURM_CPUS       CPUs the node advertises  (default: max(real CPUs, 8);
#                             more than the real count is allowed via
#                             SlurmdParameters=config_overrides so that rules with
#                             threads: 4 fit on a 2-core CI machine)
#   REMASTER_SLURM_MEM        memory (MB) the node advertises (default: max(real, 65536);
#                             not enforced, lets the profile's requests fit anywhere)
#   REMASTER_SLURM_PARTITION  partition name            (default debug)
#   REMASTER_SLURM_TIMEOUT    seconds to wait for the node to become idle (default 60)
#   REMASTER_SLURM_MIN_JOB_AGE  MinJobAge in seconds    (default 600)
set -euo pipefail

STATE_DIR=${REMASTER_SLURM_DIR:-/tmp/remaster-slurm}
PARTITION=${REMASTER_SLURM_PARTITION:-debug}
UP_TIMEOUT=${REMASTER_SLURM_TIMEOUT:-60}
MIN_JOB_AGE=${REMASTER_SLURM_MIN_JOB_AGE:-600}
CONF_DIR=/etc/slurm
SLURM_CONF_FILE=$CONF_DIR/slurm.conf
GRES_CONF_FILE=$CONF_DIR/gres.conf
MARKER="# managed by remaster tests/slurm/cluster.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)

log() { echo "cluster.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"

# --- helpers --------------------------------------------------------------

# pid_alive FILE [NAME]: the PID in FILE is running (and its comm matches NAME)
pid_alive() {
    local f=$1 name=${2:-} pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -n $name ]]; then
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    fi
}

# stop_pidfile FILE NAME: TERM (then KILL) the process named in FILE, remove FILE
stop_pidfile() {
    local f=$1 name=$2 pid i
    if pid_alive "$f" "$name"; then
        pid=$(<"$f")
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) did not exit on TERM, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$f"
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # keep the packages' own services (munge, slurmd, slurmctld through systemd or init.d) from starting
    # during the install: `up` starts its own daemons, which `down` can stop again
    local policy=/usr/sbin/policy-rc.d added="" rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, tests/slurm/cluster.sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        added=1
    fi
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
    if [[ -n $added ]]; then rm -f "$policy"; fi
    ((rc == 0)) || die "apt-get could not install ${missing[*]} (exit status $rc)"
}

node_state() {
    # state of our node as sinfo sees it (idle, mix, alloc, down*, drain, ...)
    timeout 10 sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -1 || true
}

# --- munge ----------------------------------------------------------------

munge_ok() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_ok; then
        log "munged already running"
        return 0
    fi
    install -d -o munge -g munge -m 0700 /etc/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    rm -f /run/munge/munged.pid
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged --force
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s /run/munge/munged.pid ]] && munge_ok && break
        sleep 0.1
    done
    munge_ok || die "munged did not start (see /var/log/munge/munged.log)"
    cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
}

# --- slurm config ---------------------------------------------------------

write_config() {
    local cpus real_cpus mem
    read -r real_cpus mem < <(
        slurmd -C | head -1 | tr ' ' '\n' | awk -F= '
            $1=="CPUs"{c=$2} $1=="RealMemory"{m=$2} END{print c, m}')
    [[ -n $real_cpus && -n $mem ]] || die "could not read 'slurmd -C'"
    cpus=${REMASTER_SLURM_CPUS:-$((real_cpus > 8 ? real_cpus : 8))}
    mem=${REMASTER_SLURM_MEM:-$((mem > 65536 ? mem : 65536))}

    for f in "$SLURM_CONF_FILE" "$GRES_CONF_FILE"; do
        if [[ -e $f ]] && ! grep -qF "$MARKER" "$f"; then
            die "$f exists and was not written by this script; move it away first"
        fi
    done
    install -d "$CONF_DIR"

    cat >"$STATE_DIR/slurm.conf.new" <<EOF
$MARKER
# Single-node test cluster; state in $STATE_DIR
ClusterName=remaster
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SwitchType=switch/none
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# advertise the configured CPUs/memory even if the machine has less
SlurmdParameters=config_overrides
GresTypes=gpu
# no slurmdbd / accounting: sacct does not work, squeue does
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# keep finished jobs visible to squeue/scontrol for this long (seconds)
MinJobAge=$MIN_JOB_AGE
# jobs that do not ask for memory get 1 GB per CPU, not the whole node
DefMemPerCPU=1024
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:fake:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF

    # gres.conf must point at character devices, otherwise the node is invalid
    cat >"$STATE_DIR/gres.conf.new" <<EOF
$MARKER
AutoDetect=off
NodeName=$NODE Name=gpu Type=fake File=/dev/null
NodeName=$NODE Name=gpu Type=fake File=/dev/zero
EOF
}

# config_current: the generated config equals the installed one
config_current() {
    cmp -s "$STATE_DIR/slurm.conf.new" "$SLURM_CONF_FILE" \
        && cmp -s "$STATE_DIR/gres.conf.new" "$GRES_CONF_FILE"
}

install_config() {
    install -m 0644 "$STATE_DIR/slurm.conf.new" "$SLURM_CONF_FILE"
    install -m 0644 "$STATE_DIR/gres.conf.new" "$GRES_CONF_FILE"
}

# --- up / down ------------------------------------------------------------

wait_idle() {
    local deadline=$((SECONDS + UP_TIMEOUT)) st=""
    while ((SECONDS < deadline)); do
        st=$(node_state)
        case $st in
            idle | mix | mixed | alloc | allocated) return 0 ;;
            down* | drain* | fail*)
                # stale state from an earlier run: resume it once
                timeout 10 scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    log "node $NODE did not become idle within ${UP_TIMEOUT}s (state: '${st:-unknown}')"
    timeout 10 sinfo -N -l 2>&1 | sed 's/^/  sinfo: /' >&2 || true
    timeout 10 scontrol show node "$NODE" 2>&1 | grep -i reason | sed 's/^/  /' >&2 || true
    tail -n 20 "$STATE_DIR/slurmctld.log" 2>/dev/null | sed 's/^/  slurmctld.log: /' >&2 || true
    tail -n 20 "$STATE_DIR/slurmd.log" 2>/dev/null | sed 's/^/  slurmd.log: /' >&2 || true
    die "SLURM cluster did not come up"
}

cmd_up() {
    install_packages
    NODE=$(hostname -s)
    mkdir -p "$STATE_DIR/ctld" "$STATE_DIR/spool"

    write_config
    if pid_alive "$STATE_DIR/slurmctld.pid" slurmctld && pid_alive "$STATE_DIR/slurmd.pid" slurmd \
        && config_current; then
        log "slurmctld and slurmd already running"
        wait_idle
        print_info
        return 0
    fi
    # partial leftovers of an earlier run, or a changed config: stop and start clean
    stop_pidfile "$STATE_DIR/slurmd.pid" slurmd
    stop_pidfile "$STATE_DIR/slurmctld.pid" slurmctld

    start_munge
    install_config
    log "starting slurmctld"
    slurmctld -i || die "slurmctld failed to start (see $STATE_DIR/slurmctld.log)"
    local deadline=$((SECONDS + UP_TIMEOUT)) ctld_up=""
    while ((SECONDS < deadline)); do
        if timeout 5 scontrol ping 2>/dev/null | grep -q UP; then ctld_up=1; break; fi
        sleep 0.5
    done
    if [[ -z $ctld_up ]]; then
        tail -n 20 "$STATE_DIR/slurmctld.log" 2>/dev/null | sed 's/^/  slurmctld.log: /' >&2 || true
        die "slurmctld is not answering (see $STATE_DIR/slurmctld.log)"
    fi
    log "starting slurmd"
    slurmd || die "slurmd failed to start (see $STATE_DIR/slurmd.log)"
    wait_idle
    print_info
}

cmd_down() {
    NODE=$(hostname -s)
    # cancel jobs still queued/running, so no slurmstepd or job process outlives slurmd
    if pid_alive "$STATE_DIR/slurmctld.pid" slurmctld; then
        local jobs i
        jobs=$(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            log "cancelling jobs: ${jobs//$'\n'/ }"
            # shellcheck disable=SC2086
            timeout 10 scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z $(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null) ]] && break
                sleep 1
            done
        fi
    fi
    stop_pidfile "$STATE_DIR/slurmd.pid" slurmd
    stop_pidfile "$STATE_DIR/slurmctld.pid" slurmctld
    # munged only if this script started it
    stop_pidfile "$STATE_DIR/munged.pid" munged
    for f in "$SLURM_CONF_FILE" "$GRES_CONF_FILE"; do
        if [[ -e $f ]] && grep -qF "$MARKER" "$f"; then rm -f "$f"; fi
    done
    log "down (logs kept in $STATE_DIR)"
}

print_info() {
    log "cluster up: partition '$PARTITION' (default), node $NODE, gres gpu:fake:2"
    timeout 10 sinfo -o '%P %a %D %T %C %m %G' >&2 || true
    echo "export SLURM_CONF=$SLURM_CONF_FILE"
}

cmd_status() {
    NODE=$(hostname -s)
    local n
    for n in munged slurmctld slurmd; do
        if pid_alive "$STATE_DIR/$n.pid" "$n"; then echo "$n: running (pid $(<"$STATE_DIR/$n.pid"))"
        else echo "$n: not started by cluster.sh"; fi
    done
    if [[ -e $SLURM_CONF_FILE ]]; then
        timeout 10 sinfo -o '%P %a %D %T %C %m %G' || true
    else
        echo "no $SLURM_CONF_FILE: cluster down"
    fi
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
