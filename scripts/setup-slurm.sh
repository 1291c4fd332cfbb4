#!/usr/bin/env bash
# A one-node Slurm cluster with PMIx and Open MPI for the Slurm/MPI tests, and the cached MPI
# base image. Idempotent: installs only what is missing, writes the config once, starts only
# daemons that are not running, and returns once the node is idle. Run as root after
# scripts/setup-host.sh (it needs Apptainer and debootstrap).
set -euo pipefail

CACHE_DIR=${TYKKY_CI_DIR:-/opt/tykky-ci}
IMAGE_DIR="$CACHE_DIR/images"
SLURM_CONF=/etc/slurm/slurm.conf
PARTITION=tykky

log() { printf '[setup-slurm] %s\n' "$*" >&2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

running() {
    # The daemon runs when a process of that exact name exists.
    pgrep -x "$1" >/dev/null 2>&1
}

setup_munge() {
    local key=/etc/munge/munge.key
    if [ ! -s "$key" ]; then
        dd if=/dev/urandom bs=1024 count=1 of="$key" status=none
    fi
    chown munge:munge "$key"
    chmod 400 "$key"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    if ! running munged; then
        log "starting munged"
        runuser -u munge -- /usr/sbin/munged
    fi
    munge -n | unmunge >/dev/null
}

slurm_conf() {
    local host cpus memory
    host=$(hostname -s)
    cpus=$(nproc --all)
    memory=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
    cat <<CONF
# One-node test cluster written by tykky's scripts/setup-slurm.sh.
ClusterName=tykky-ci
SlurmctldHost=$host
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
SchedulerType=sched/backfill
# Jobs that outlive a time limit or scancel are killed quickly.
KillWait=5
MinJobAge=60
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:16
CONF
}

write_slurm_conf() {
    # Rewritten when this machine differs from the one it was written for (host name, CPUs,
    # memory); daemons started with the old file are restarted.
    local wanted
    wanted=$(slurm_conf)
    [ -s "$SLURM_CONF" ] && [ "$(cat "$SLURM_CONF")" = "$wanted" ] && return 0
    mkdir -p /etc/slurm
    printf '%s\n' "$wanted" > "$SLURM_CONF"
    chmod 644 "$SLURM_CONF"
    local daemon pid
    for daemon in slurmd slurmctld; do
        pid=$(cat "/run/$daemon.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$daemon" ]; then
            log "restarting $daemon for the new configuration"
            kill "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
        fi
    done
}

start_slurm() {
    mkdir -p /var/spool/slurmd /var/spool/slurmctld /var/log/slurm
    if ! running slurmctld; then
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    if ! running slurmd; then
        log "starting slurmd"
        /usr/sbin/slurmd
    fi
}

wait_until_idle() {
    local host state
    host=$(hostname -s)
    for _ in $(seq 1 60); do
        state=$(sinfo -h -n "$host" -o '%t' 2>/dev/null || true)
        case "$state" in
            idle|mix|alloc) return 0 ;;
            down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    log "the node did not become idle (state: ${state:-none}); see /var/log/slurm/"
    exit 1
}

main() {
    [ "$(id -u)" -eq 0 ] || { log "run as root"; exit 1; }
    apt_install slurm-wlm munge libpmix2 libpmix-dev openmpi-bin python3-mpi4py debootstrap
    setup_munge
    write_slurm_conf
    start_slurm
    wait_until_idle
    build_debian_image mpi python3,python3-venv,python3-pip,python3-mpi4py,openmpi-bin,libpmix2
    log "ready: $(sinfo -h -o '%P %D %t' | head -n 1), MPI image $IMAGE_DIR/mpi.sif"
}

main "$@"
