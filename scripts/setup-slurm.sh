#!/usr/bin/env bash
# A two-node Slurm cluster on this one machine, with PMIx and Open MPI, for the Slurm/MPI tests,
# and the cached MPI base image. The first node is the host itself; the second is a slurmd in
# its own network, UTS and mount namespace (its own host name, address and /dev/shm, the rest
# of the filesystem shared), joined to the host by a veth pair with addresses of a private
# range used only between the two. Partition tykky (the default) holds the host's node only;
# partition twonode holds both. Idempotent: installs only what is missing, writes the config
# once, starts only daemons that are not running, and returns once both nodes are idle. Run as
# root after scripts/setup-host.sh (it needs Apptainer and debootstrap).
set -euo pipefail

CACHE_DIR=${TYKKY_CI_DIR:-/opt/tykky-ci}
IMAGE_DIR="$CACHE_DIR/images"
SLURM_CONF=/etc/slurm/slurm.conf
PARTITION=tykky
TWO_NODE_PARTITION=twonode
# The veth pair: HOST_ADDR on the host's end, NODE2_ADDR on the second node's; nothing else is
# routed there, so the cluster's traffic never leaves the machine.
NETNS=tykky-node2
VETH_HOST=tykky-veth1
VETH_NODE=tykky-veth2
HOST_ADDR=10.77.0.1
NODE2_ADDR=10.77.0.2

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

second_node() {
    printf '%s-2\n' "$(hostname -s)"
}

setup_network() {
    # The second node's network namespace and the veth pair to it (kept across runs).
    local other
    other=$(ip -o route show "${HOST_ADDR%.*}.0/24" | grep -v " dev $VETH_HOST " || true)
    if [ -n "$other" ]; then
        log "the test cluster's range ${HOST_ADDR%.*}.0/24 is already routed on this machine ($other);"
        log "change HOST_ADDR and NODE2_ADDR in scripts/setup-slurm.sh"
        exit 1
    fi
    [ -e "/run/netns/$NETNS" ] || ip netns add "$NETNS"
    if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
        log "creating the veth pair $VETH_HOST ($HOST_ADDR) - $VETH_NODE ($NODE2_ADDR)"
        ip link add "$VETH_HOST" type veth peer name "$VETH_NODE" netns "$NETNS"
    fi
    ip addr replace "$HOST_ADDR/24" dev "$VETH_HOST"
    ip link set "$VETH_HOST" up
    ip -n "$NETNS" addr replace "$NODE2_ADDR/24" dev "$VETH_NODE"
    ip -n "$NETNS" link set "$VETH_NODE" up
    ip -n "$NETNS" link set lo up
}

slurm_conf() {
    local host node2 cpus memory
    host=$(hostname -s)
    node2=$(second_node)
    cpus=$(nproc --all)
    memory=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
    cat <<CONF
# Two-node test cluster on one machine, written by tykky's scripts/setup-slurm.sh.
ClusterName=tykky-ci
SlurmctldHost=$host($HOST_ADDR)
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmctldPidFile=/run/slurmctld.pid
# %n: each node's slurmd has its own files.
SlurmdPidFile=/run/slurmd-%n.pid
SlurmdSpoolDir=/var/spool/slurmd/%n
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
# Where PMIx puts its per-step directories: /tmp is node-local on a real cluster, here the
# nodes share it.
TmpFS=/tmp/slurm-%n
ReturnToService=2
SchedulerType=sched/backfill
# Jobs that outlive a time limit or scancel are killed quickly.
KillWait=5
MinJobAge=60
InactiveLimit=0
NodeName=$host NodeAddr=$HOST_ADDR CPUs=$cpus RealMemory=$memory State=UNKNOWN
NodeName=$node2 NodeAddr=$NODE2_ADDR CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:16
PartitionName=$TWO_NODE_PARTITION Nodes=$host,$node2 MaxTime=INFINITE State=UP OverSubscribe=FORCE:16
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
    # /run/slurmd.pid: written by a one-node configuration of earlier versions of this script.
    local file pid
    for file in /run/slurmd.pid /run/slurmd-*.pid /run/slurmctld.pid; do
        pid=$(daemon_pid "$file")
        if [ -n "$pid" ]; then
            log "restarting $(basename "$file" .pid) for the new configuration"
            kill "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
        fi
    done
}

daemon_pid() {
    # The pid in a Slurm pid file when that process still runs the daemon the file names.
    local file=$1 pid
    pid=$(cat "$file" 2>/dev/null || true)
    case "$(cat "/proc/${pid:-none}/comm" 2>/dev/null)" in
        slurmd|slurmctld) printf '%s\n' "$pid" ;;
    esac
}

start_slurm() {
    local host node2
    host=$(hostname -s)
    node2=$(second_node)
    mkdir -p "/var/spool/slurmd/$host" "/var/spool/slurmd/$node2" /var/spool/slurmctld /var/log/slurm \
        "/tmp/slurm-$host" "/tmp/slurm-$node2"
    chmod 1777 "/tmp/slurm-$host" "/tmp/slurm-$node2"
    if ! running slurmctld; then
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    if [ -z "$(daemon_pid "/run/slurmd-$host.pid")" ]; then
        log "starting slurmd of $host"
        /usr/sbin/slurmd -N "$host"
    fi
    if [ -z "$(daemon_pid "/run/slurmd-$node2.pid")" ]; then
        log "starting slurmd of $node2 ($NODE2_ADDR, network namespace $NETNS)"
        # Its own host name and /dev/shm, as a node of its own has; mounts of the host still
        # reach it (slave propagation). nsenter, not `ip netns exec`, which would mount a /sys
        # without the cgroup filesystem that slurmd needs. The daemon keeps the namespaces.
        nsenter --net="/run/netns/$NETNS" unshare --uts --mount --propagation slave /bin/sh -c \
            'hostname "$1" && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm && exec /usr/sbin/slurmd -N "$1"' \
            sh "$node2" || { log "slurmd of $node2 did not start; see /var/log/slurm/slurmd-$node2.log"; exit 1; }
    fi
}

wait_until_idle() {
    local node state
    for node in "$(hostname -s)" "$(second_node)"; do
        for _ in $(seq 1 60); do
            state=$(sinfo -h -N -n "$node" -o '%t' 2>/dev/null | head -n 1 || true)
            case "$state" in
                idle|mix|alloc) break ;;
                down*|drain*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
            esac
            sleep 1
        done
        case "$state" in
            idle|mix|alloc) ;;
            *) log "node $node did not become idle (state: ${state:-none}); see /var/log/slurm/"; exit 1 ;;
        esac
    done
}

main() {
    [ "$(id -u)" -eq 0 ] || { log "run as root"; exit 1; }
    apt_install slurm-wlm munge libpmix2 libpmix-dev openmpi-bin python3-mpi4py debootstrap iproute2 util-linux
    setup_munge
    setup_network
    write_slurm_conf
    start_slurm
    wait_until_idle
    build_debian_image mpi python3,python3-venv,python3-pip,python3-mpi4py,openmpi-bin,libpmix2
    log "ready: $(sinfo -h -o '%P %D %t' | tr '\n' ' ')MPI image $IMAGE_DIR/mpi.sif"
}

main "$@"
