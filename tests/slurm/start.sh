#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the `reproduce --emit slurm` test: writes a
# slurm.conf into DIR (default: a new temporary folder), starts munged (if it is not running),
# slurmctld and slurmd, waits until the node is idle, and prints `export SLURM_CONF=…` for the test.
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge. Stop it with tests/slurm/stop.sh DIR.
set -euo pipefail
DIR=${1:-$(mktemp -d /tmp/cobrar-slurm.XXXXXX)}
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
HOST=$(hostname)
cat > "$DIR/slurm.conf" <<CONF
ClusterName=cobrar-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key; }
    runuser -u munge -- munged
fi
export SLURM_CONF="$DIR/slurm.conf"
slurmctld
slurmd
for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 1
done
echo "slurm did not come up; logs in $DIR/log" >&2
cat "$DIR"/log/*.log >&2 || true
exit 1
