#!/usr/bin/env bash
# The GPU suite: one script for a real GPU (or any adapter). It checks the adapter first
# (`cobrar-gpu selftest`), then benchmarks the study's models on the built-in workloads (no data files:
# the same data on every machine, proven by the workload hashes in bench.json), runs the PyTorch
# comparator beside cobrar-gpu on the ML-1M workload's split when PyTorch is installed (CUDA when
# available, dense and sparse inputs), and compares everything with `bench-report`. Under OUT_DIR it
# leaves at most six files, so the whole folder can come back from a device machine:
#   selftest.json  every check on the adapter        bench.json  every bench run (bench-report input)
#   report.md      the bench-report comparison        summary.md  cobrar-gpu beside PyTorch
#   suite.json     the machine, the adapters, the comparator's steps/s     suite.log  all it printed
#
#   benches/gpu_suite.sh OUT_DIR [--quick]
#
# --quick: the selftest's quick set and a step or two per model, no evaluation: about 2 minutes on
# lavapipe (a 2-core machine), for rehearsing the script; CI runs it.
#
# Time on an H100/H200-class GPU, estimated from the plans' bytes per step (bench's roofline, measured
# on lavapipe: CoBraR 512,64 about 0.4 GB a step on ML-1M, 2048,128 about 1.5 GB, DeepMF 0.4, BPR-MF
# 0.03, LightGCN 0.4, MultVAE 0.3 GB and 6 GFLOP; CoBraR 512,64 on ML-20M 17 GB, dense Adam over the
# whole tables) at 2-3 TB/s: every step is under 10 ms, so the GPU's part of the 350 steps of a model is
# a few seconds; the host's batch pipeline (host-steps), the start-up probes and the evaluations
# dominate. Estimate: build or copy 0-2 min, selftest 10-20 s, 12 workload × model runs on ML-1M and
# Amazon Baby at about 15 s each, 2 on ML-20M at about 45 s each (generation 10 s, host pipeline),
# comparator 4 × 20 s: about 6-7 minutes in all, inside the 8 a device session may spend on it.
#
# Inputs (environment):
#   COBRAR_BIN         a prebuilt cobrar-gpu                          [default: cargo build --release]
#   COBRAR_COMPARATOR  torch_reference.py           [default: ../shared/bench/torch_reference.py]
#   COBRAR_ADAPTER     which adapter (see `cobrar-gpu adapters`)                  [default: auto]
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:?usage: benches/gpu_suite.sh OUT_DIR [--quick]}
QUICK=0
[ "${2:-}" = "--quick" ] && QUICK=1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
exec > >(tee "$OUT/suite.log") 2>&1

COMPARATOR=${COBRAR_COMPARATOR:-../shared/bench/torch_reference.py}
export NODEVICE_SELECT=1 PYTHONUNBUFFERED=1

if [ "$QUICK" = 1 ]; then
    SELFTEST=(--quick)
    STD=(--steps 1 --warmup 1 --profile-steps 1 --host-steps 50 --no-eval)
    BIG=()
    TORCH_STEPS=5
    WORKLOADS=(ml-1m)
else
    SELFTEST=()
    STD=(--steps 200 --warmup 20 --profile-steps 10 --host-steps 2000)
    BIG=(--steps 100 --warmup 10 --profile-steps 5 --host-steps 200)
    TORCH_STEPS=300
    WORKLOADS=(ml-1m amazon-baby)
fi
started=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - started ))s] $*"; }

stamp "binary"
if [ -n "${COBRAR_BIN:-}" ]; then
    BIN=$COBRAR_BIN
else
    cargo build --release --quiet
    BIN=target/release/cobrar-gpu
fi
"$BIN" --version
"$BIN" adapters --json > "$WORK/adapters.json"
"$BIN" adapters

stamp "selftest"
"$BIN" selftest "${SELFTEST[@]}" --json "$OUT/selftest.json" --overwrite > /dev/null

for w in "${WORKLOADS[@]}"; do
    stamp "bench $w: every standard model"
    "$BIN" bench --workload "$w" --standard-models "${STD[@]}" --json "$WORK/bench-$w.json" > /dev/null
done
if [ "$QUICK" = 1 ]; then
    stamp "bench amazon-baby: CoBraR 512,64"
    "$BIN" bench --workload amazon-baby --arch 512,64 "${STD[@]}" --json "$WORK/bench-amazon-baby.json" > /dev/null
else
    for model in "cobrar --arch 512,64" "bpr --arch 64"; do
        stamp "bench ml-20m: $model"
        # shellcheck disable=SC2086
        "$BIN" bench --workload ml-20m --model $model "${BIG[@]}" --json "$WORK/bench-ml-20m-${model%% *}.json" > /dev/null
    done
fi

stamp "bench-report"
python3 - "$WORK" "$OUT/bench.json" <<'EOF'
import glob, json, sys
files = sorted(glob.glob(f"{sys.argv[1]}/bench-*.json"))
merged = json.load(open(files[0]))
for f in files[1:]:
    merged["runs"] += json.load(open(f))["runs"]
json.dump(merged, open(sys.argv[2], "w"), indent=1)
EOF
"$BIN" bench-report "$OUT/bench.json" --out "$WORK/report" > /dev/null
cp "$WORK/report/report.md" "$OUT/report.md"

TORCH_DEVICE=none
if python3 -c 'import torch' 2>/dev/null; then
    TORCH_DEVICE=cpu
    if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        TORCH_DEVICE=cuda
    fi
fi
echo "PyTorch: $TORCH_DEVICE"
if [ "$TORCH_DEVICE" != none ] && [ -f "$COMPARATOR" ]; then
    stamp "split of the ml-1m workload for the comparator"
    "$BIN" data split --workload ml-1m --out "$WORK/ml1m-split" --overwrite > /dev/null
    for arch in 512,64 2048,128; do
        d1=${arch%,*}; emb=${arch#*,}
        for inputs in sparse dense; do
            stamp "PyTorch $arch alg1 $inputs ($TORCH_DEVICE)"
            python3 "$COMPARATOR" --split-dir "$WORK/ml1m-split" --d1 "$d1" --branch "$emb" \
                --sampler alg1 --inputs "$inputs" --max-steps "$TORCH_STEPS" --eval-every 1000 \
                --device "$TORCH_DEVICE" --json "$WORK/torch-$d1-$emb-$inputs.json" \
                | grep -E 'steps_per_s|parameters' || echo "comparator failed"
        done
    done
else
    echo "comparator skipped (PyTorch: $TORCH_DEVICE; comparator: $COMPARATOR)"
fi

stamp "summary"
python3 - "$WORK" "$OUT" "$TORCH_DEVICE" "$QUICK" <<'EOF'
import glob, json, os, platform, sys
work, out, torch_device, quick = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
bench = json.load(open(f"{out}/bench.json"))
selftest = json.load(open(f"{out}/selftest.json"))
torch = {}
for p in sorted(glob.glob(f"{work}/torch-*.json")):
    d = json.load(open(p))
    torch[os.path.basename(p)[6:-5]] = d["epochs"][0]["steps_per_s"] if d.get("epochs") else None
suite = dict(machine=dict(host=platform.node(), cpu=bench.get("cpu"), cores=os.cpu_count()), quick=quick,
             torch_device=torch_device, adapters=json.load(open(f"{work}/adapters.json")),
             selftest_passed=selftest["passed"], torch_steps_per_s=torch)
json.dump(suite, open(f"{out}/suite.json", "w"), indent=1)
lines = []
a = bench["runs"][0]["adapter"]
lines.append(f"# GPU suite — {a['name']} ({a['backend']}, {a['driver']} {a['driver_info']})\n")
lines.append(f"{'Quick rehearsal' if quick else 'Full run'}; selftest {'passed' if selftest['passed'] else 'FAILED'} "
             f"({len(selftest['adapters'][0]['checks'])} checks); PyTorch on {torch_device}.\n")
lines.append("| workload | model | cobrar-gpu steps/s | GPU alone | host ceiling | PyTorch sparse | PyTorch dense | ratio vs sparse | eval s |")
lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
fmt = lambda v: f"{v:.2f}" if v else "—"
for r in bench["runs"]:
    key = r["arch"].replace(",", "-")
    ts = torch.get(f"{key}-sparse") if r["model"] == "cobrar" and r["workload"]["name"] == "ml-1m" else None
    td = torch.get(f"{key}-dense") if r["model"] == "cobrar" and r["workload"]["name"] == "ml-1m" else None
    ratio = f"{r['steps_per_s'] / ts:.2f}×" if ts else "—"
    lines.append(f"| {r['workload']['name']} | {r['model']} {r['arch']} | {r['steps_per_s']:.2f} | {r['gpu_steps_per_s']:.2f} | "
                 f"{r['host_steps_per_s']:.0f} | {fmt(ts)} | {fmt(td)} | {ratio} | {fmt(r['eval_seconds'])} |")
lines.append("\nPer-kernel shares of the copy bandwidth: report.md (regenerate the plots with "
             "`cobrar-gpu bench-report bench.json --out DIR`).")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
stamp "done: $OUT/summary.md, $OUT/report.md, $OUT/bench.json, $OUT/selftest.json"
