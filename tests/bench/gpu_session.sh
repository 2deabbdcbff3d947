#!/usr/bin/env bash
# One GPU session of about 10 minutes, run as it is: every figure goes to one file.
#
#   tests/bench/gpu_session.sh                      # on a GPU machine: figures in results/gpu_session.txt
#   tests/bench/gpu_session.sh --device cpu --tiny --out /tmp/figures.txt   # the CPU check (tests/bench)
#
# In order, each step bounded by `timeout` so one slow step cannot eat the session:
#   1. the machine: GPU, driver, torch, CUDA, cores, memory, ffmpeg;
#   2. the GPU tests (pytest -m gpu: pinned buffers, OOM recovery under a real cap, compile, bf16);
#   3. the SwinIR fast-path probe: SwinIR-M ×2 on one 1280×960 frame (115,200 windows × heads);
#   4. each stage's ceiling (bench_stages.py: decode, colour, pipe, shard writer per form);
#   5. bench_upscale.py for Compact, ESRGAN and SwinIR-M at DVD size (no seed loop), ~6 minutes;
#   6. bench_interpolate.py (RIFE 4.6 widths) if the session has time left.
set -uo pipefail

cd "$(dirname "$0")/../.."
DEVICE=auto
OUT=results/gpu_session.txt
TINY=0
BUDGET=600  # seconds for the whole session; later steps are skipped once it is spent
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --tiny) TINY=1; shift ;;
        --budget) BUDGET="$2"; shift 2 ;;
        *) echo "gpu_session.sh: unknown option $1 (--device D, --out FILE, --tiny, --budget S)" >&2; exit 2 ;;
    esac
done
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
START=$(date +%s)
FAILED=0

left() { echo $(( BUDGET - ($(date +%s) - START) )); }

# step NAME SECONDS COMMAND...: the command's output appended to $OUT under a header, with its time and status
step() {
    local name="$1" limit="$2"; shift 2
    if [ "$(left)" -lt 5 ]; then
        echo "== $name: skipped (session budget spent)" | tee -a "$OUT"
        return 0
    fi
    [ "$limit" -gt "$(left)" ] && limit=$(left)
    echo "== $name ($*)" | tee -a "$OUT"
    local began rc
    began=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >> "$OUT" 2>&1
    rc=$?
    echo "== $name: exit $rc after $(( $(date +%s) - began )) s" | tee -a "$OUT"
    [ $rc -ne 0 ] && FAILED=$((FAILED + 1))
    return 0
}

if [ "$TINY" = 1 ]; then
    SIZE=48x32; FRAMES=3; STAGE_SIZE=96x64; STAGE_FRAMES=6; PROBE=tiny; INTERP_SIZE=64x64; INTERP_FRAMES=3
    MODELS=--tiny-model
else
    SIZE=720x480; FRAMES=0; STAGE_SIZE=720x480; STAGE_FRAMES=96; PROBE=full; INTERP_SIZE=1280x960; INTERP_FRAMES=48
    MODELS=--skip-seed
fi

facts() {
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(hostname); cores: $(nproc); memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv,noheader
    fi
    "$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
for index in range(torch.cuda.device_count()):
    props = torch.cuda.get_device_properties(index)
    print(f"cuda:{index} {props.name}, {props.total_memory / 2**30:.1f} GiB, sm {props.major}.{props.minor}, "
          f"{props.multi_processor_count} SMs, bf16 {torch.cuda.is_bf16_supported(including_emulation=False)}")
EOF
    PYTHONPATH=workflow/scripts "$PY" -c "from remaster.run import media; print('ffmpeg:', media.tool('ffmpeg'))" \
        || echo "ffmpeg: not found"
}

swinir_probe() {
    PYTHONPATH=workflow/scripts "$PY" - "$DEVICE" "$PROBE" <<'EOF'
import sys, time
import torch
from spandrel.architectures.SwinIR import SwinIR
from remaster.models import fastpaths
from remaster.models.devices import Device, resolve

device, kind = resolve(sys.argv[1]), sys.argv[2]
if kind == "full":  # SwinIR-M x2 on 1280x960: 160x120 windows x 6 heads = 115,200 > CUDA's 65,535
    model = SwinIR(upscale=2, img_size=64, window_size=8, img_range=1.0, depths=[6] * 6, embed_dim=180,
                   num_heads=[6] * 6, mlp_ratio=2, upsampler="nearest+conv", resi_connection="1conv")
    height, width = 960, 1280
else:  # the same fold past 65,535 on a model small enough for a CPU: 4-pixel windows x 6 heads at 480x368
    model = SwinIR(upscale=1, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[6], mlp_ratio=1,
                   upsampler="", resi_connection="1conv")
    height, width = 368, 480
model = model.eval()
print("patched:", fastpaths.patch_model(model))
dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
model = model.to(device=device, dtype=dtype)
frames = torch.rand(2, 3, height, width, device=device, dtype=dtype)
kit = Device(device)
with torch.inference_mode():
    for batch in (1, 2):
        kit.synchronize()
        start = time.perf_counter()
        out = model(frames[:batch])
        kit.synchronize()
        finite = bool(torch.isfinite(out).all())
        print(f"swinir_fast_path: {width}x{height} batch {batch} on {device} at {str(dtype).removeprefix('torch.')}: "
              f"ok, {time.perf_counter() - start:.2f} s, output {tuple(out.shape)}, finite {finite}")
EOF
}

export PY DEVICE PROBE
export -f facts swinir_probe
step "machine" 60 bash -c facts
step "gpu tests" 150 "$PY" -m pytest -n 0 -q -m gpu tests/models/test_gpu.py -p no:cacheprovider
step "swinir fast path" 90 bash -c swinir_probe
step "stage ceilings" 90 "$PY" tests/bench/bench_stages.py --size "$STAGE_SIZE" --frames "$STAGE_FRAMES" --device "$DEVICE"
# frames sized for about two minutes each on an H100 at DVD size (forward-only estimates: Compact ~700 fps,
# ESRGAN ~25 fps, SwinIR-M ~4 fps at bf16), each timed as pipeline and as forward only
for spec in compact:600 esrgan:96 swinir:24; do
    arch="${spec%%:*}"; count="${spec##*:}"
    [ "$FRAMES" -gt 0 ] && count=$FRAMES
    step "bench_upscale $arch" 150 "$PY" tests/bench/bench_upscale.py --arch "$arch" --size "$SIZE" --frames "$count" \
        --device "$DEVICE" --skip-seed $MODELS
done
step "bench_interpolate" 90 "$PY" tests/bench/bench_interpolate.py --size "$INTERP_SIZE" --frames "$INTERP_FRAMES" \
    --device "$DEVICE" --seconds "$([ "$TINY" = 1 ] && echo 1 || echo 10)"
echo "== session: $(( $(date +%s) - START )) s, $FAILED step(s) failed; figures in $OUT" | tee -a "$OUT"
exit $(( FAILED > 0 ))
