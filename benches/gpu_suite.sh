#!/usr/bin/env bash
# The GPU suite: one script for the first (or any) real GPU. It builds release (or takes prebuilt
# binaries), runs the GPU tests on the adapter, runs `cobrar-gpu bench` on ML-1M for 512/64 and
# 2048/128 with both samplers, runs the PyTorch comparator on the same split beside it (CUDA when
# available, dense and sparse inputs), and writes the results under OUT_DIR:
#   suite.json   every bench report and comparator run, with the machine's description
#   summary.md   the side-by-side table (steps/s, ratios, ceilings, roofline)
#   tests.log    the GPU tests' output;  suite.log  everything else it printed
# At most a handful of files, so the whole folder can come back from a device machine.
#
#   benches/gpu_suite.sh OUT_DIR [--quick]
#
# --quick: a few steps per configuration, for rehearsing the suite on a slow adapter (lavapipe).
# Inputs (environment):
#   COBRAR_DATA_DIR      the datasets folder (holds ml-1m/)                        [required]
#   COBRAR_COMPARATOR    torch_reference.py                [default: ../shared/bench/torch_reference.py]
#   COBRAR_BIN           a prebuilt cobrar-gpu              [default: cargo build --release]
#   COBRAR_GPU_TESTS     a prebuilt `gpu` test binary       [default: cargo test --release --test gpu]
#   COBRAR_ADAPTER       which adapter (see `cobrar-gpu adapters`)                  [default: auto]
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

: "${COBRAR_DATA_DIR:?set COBRAR_DATA_DIR to the datasets folder (it holds ml-1m/)}"
COMPARATOR=${COBRAR_COMPARATOR:-../shared/bench/torch_reference.py}
export NODEVICE_SELECT=1 PYTHONUNBUFFERED=1 COBRAR_DATA_DIR

if [ "$QUICK" = 1 ]; then
    STEPS=3 WARMUP=1 PROFILE=1 HOST=200 TORCH_STEPS=5
else
    STEPS=300 WARMUP=30 PROFILE=20 HOST=5000 TORCH_STEPS=300
fi
started=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - started ))s] $*"; }

stamp "binaries"
if [ -n "${COBRAR_BIN:-}" ]; then
    BIN=$COBRAR_BIN
else
    cargo build --release --quiet
    BIN=target/release/cobrar-gpu
fi
"$BIN" --version

stamp "adapters"
"$BIN" adapters --json > "$WORK/adapters.json"
"$BIN" adapters

stamp "GPU tests"
if [ -n "${COBRAR_GPU_TESTS:-}" ]; then
    "$COBRAR_GPU_TESTS" > "$OUT/tests.log" 2>&1 && echo "GPU tests passed" || echo "GPU TESTS FAILED (tests.log)"
else
    cargo test --release --test gpu > "$OUT/tests.log" 2>&1 && echo "GPU tests passed" || echo "GPU TESTS FAILED (tests.log)"
fi

stamp "split"
"$BIN" data split --dataset ml-1m --out "$WORK/ml1m-split" --overwrite

TORCH_DEVICE=cpu
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    TORCH_DEVICE=cuda
fi
echo "PyTorch device: $TORCH_DEVICE"

for arch in 512,64 2048,128; do
    d1=${arch%,*}; emb=${arch#*,}
    for sampler in alg1 authors; do
        stamp "bench $arch $sampler"
        "$BIN" bench --dataset ml-1m --arch "$arch" --sampler "$sampler" --steps "$STEPS" \
            --warmup "$WARMUP" --profile-steps "$PROFILE" --host-steps "$HOST" \
            --json "$WORK/bench-$d1-$emb-$sampler.json" > /dev/null
        tsampler=$sampler; [ "$sampler" = authors ] && tsampler=elliot
        for inputs in sparse dense; do
            stamp "PyTorch $arch $sampler $inputs ($TORCH_DEVICE)"
            if [ -f "$COMPARATOR" ]; then
                python3 "$COMPARATOR" --split-dir "$WORK/ml1m-split" --d1 "$d1" --branch "$emb" \
                    --sampler "$tsampler" --inputs "$inputs" --max-steps "$TORCH_STEPS" --eval-every 1000 \
                    --device "$TORCH_DEVICE" --json "$WORK/torch-$d1-$emb-$sampler-$inputs.json" \
                    | grep -E 'steps_per_s|parameters' || echo "comparator failed"
            else
                echo "no comparator at $COMPARATOR"
            fi
        done
    done
done

stamp "summary"
python3 - "$WORK" "$OUT" "$TORCH_DEVICE" "$QUICK" <<'EOF'
import glob, json, os, platform, sys
work, out, torch_device, quick = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
benches = {os.path.basename(p)[6:-5]: json.load(open(p)) for p in sorted(glob.glob(f"{work}/bench-*.json"))}
torch = {}
for p in sorted(glob.glob(f"{work}/torch-*.json")):
    d = json.load(open(p))
    torch[os.path.basename(p)[6:-5]] = d["epochs"][0]["steps_per_s"] if d.get("epochs") else None
adapters = json.load(open(f"{work}/adapters.json"))
suite = dict(machine=dict(host=platform.node(), cpu=platform.processor(), cores=os.cpu_count()),
             quick=quick, torch_device=torch_device, adapters=adapters, bench=benches, torch_steps_per_s=torch)
json.dump(suite, open(f"{out}/suite.json", "w"), indent=1)
lines = []
first = next(iter(benches.values()), None)
if first:
    a = first["adapter"]
    lines.append(f"# GPU suite — {a['name']} ({a['backend']}, {a['driver']} {a['driver_info']})\n")
    lines.append(f"{'Quick rehearsal' if quick else 'Full run'}; PyTorch on {torch_device}.\n")
lines.append("| config | sampler | cobrar-gpu steps/s | PyTorch sparse | PyTorch dense | ratio vs sparse | host ceiling | GPU alone | index built by | copy GB/s | eval s |")
lines.append("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
for key, b in benches.items():
    d1, emb, sampler = key.split("-")
    ts, td = torch.get(f"{key}-sparse"), torch.get(f"{key}-dense")
    ratio = f"{b['steps_per_s'] / ts:.2f}×" if ts else "—"
    fmt = lambda v: f"{v:.2f}" if v else "—"
    lines.append(f"| {d1}/{emb} | {sampler} | {b['steps_per_s']:.2f} | {fmt(ts)} | {fmt(td)} | {ratio} | "
                 f"{b['host_steps_per_s']:.0f} | {b['gpu_steps_per_s']:.2f} | {b['batch_pipeline']['strategy']} | "
                 f"{b['copy_gbps']:.1f} | {b['eval_seconds']:.2f} |")
for key, b in benches.items():
    lines.append(f"\n## Roofline {key}\n")
    lines.append("| kernel | dispatches | MB/step | ms/step | GB/s | % of copy | GFLOP/s |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for k in b["kernels"]:
        lines.append(f"| {k['kernel']} | {k['dispatches']} | {k['bytes'] / 1e6:.1f} | {k['ms_per_step']:.3f} | "
                     f"{k['gbps']:.1f} | {100 * k['copy_fraction']:.0f}% | {k['gflops']:.1f} |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
stamp "done: $OUT/summary.md, $OUT/suite.json"
