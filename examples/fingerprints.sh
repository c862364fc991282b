#!/usr/bin/env bash
# Fingerprints of every model's result, for refactors that must not change results: trains each of
# the six models for two epochs on the embedded dataset with one seed and prints the SHA-256 of its
# weights (model.safetensors: deterministic bytes), its top-k lists (recommendations.tsv) and its
# per-user test metrics (user_metrics.tsv). Run it before and after a change on the same adapter and
# diff the two outputs: any difference is a changed result. (Bit-identity holds on one adapter and
# driver; another GPU rounds differently.)
#
#   examples/fingerprints.sh [OUT_FILE]        (COBRAR_BIN: a prebuilt binary; COBRAR_ADAPTER: which)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${COBRAR_BIN:-target/release/cobrar-gpu}
[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
{
    echo "# cobrar-gpu fingerprints: train --epochs 2 --seed 7 on the embedded dataset"
    for model in cobrar deepmf bpr multvae lightgcn mostpop; do
        "$BIN" train --model "$model" --epochs 2 --seed 7 --quiet --out "$WORK/$model" \
            >/dev/null 2>"$WORK/$model.err" || { cat "$WORK/$model.err" >&2; exit 1; }
        for f in model.safetensors recommendations.tsv user_metrics.tsv; do
            if [ -f "$WORK/$model/$f" ]; then
                echo "$model $f $(sha256sum < "$WORK/$model/$f" | cut -c1-64)"
            fi
        done
    done
} > "${1:-/dev/stdout}"
