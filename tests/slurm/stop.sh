#!/usr/bin/env bash
# Stops what tests/slurm/start.sh DIR started (munged is left running: other users may need it).
set -uo pipefail
DIR=$1
for pid in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
done
exit 0
