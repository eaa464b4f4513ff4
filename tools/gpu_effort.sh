#!/usr/bin/env bash
# Effort levels of the shipped models on whole images, on a remote GPU (a 2-core CPU takes
# about 12 minutes per effort-9 encode of a Kodak image).
#
#   [MODELS="mse msssim"] [EFFORTS=0,9] [DATASET=runs/kodak24] bash tools/gpu_effort.sh MINUTES
#
# Run by the device tool with carry [".whl", "runs/kodak24", "runs/effort-cuda"] (tools/README.md,
# "Effort levels on all of Kodak"). The models run side by side on the one GPU, each starting no
# encode after MINUTES. Every encode is appended to ROWS/effort-MODEL.jsonl (ROWS defaults to
# runs/effort-cuda) as it finishes and a later call skips what those files hold, so copy the
# returned rows files back there before the next call. Returned in $OUT: the rows files, each
# model's log, and effort.json / effort.md of the images measured at every quality and effort
# so far (keys MODEL-cuda-DATASETNAME). DEVICE=cpu runs the same on the CPU (a smoke test).
set -uo pipefail
minutes=${1:?minutes}
models=${MODELS:-mse msssim}
efforts=${EFFORTS:-0,9}
dataset=${DATASET:-runs/kodak24}
device=${DEVICE:-cuda}
rows=${ROWS:-runs/effort-cuda}
out=${OUT:-runs/gpu-out}
source "$(dirname "$0")/gpu_env.sh"
check_models $models
mkdir -p "$out" "$rows"
prepare_machine
for model in $models; do
    "$PYTHON" -m benchmarks.effort --model "$model" --dataset "$dataset" --limit 0 --crop 0 \
        --qualities 20,40,60,80 --efforts "$efforts" --full-size-efforts '' --device "$device" \
        --threads 2 --rows "$rows/effort-$model.jsonl" --max-minutes "$minutes" --out "$out" \
        --tag="-$device-$(basename "$dataset")" > "$out/effort-$model.log" 2>&1 &
done
wait
for model in $models; do
    cp "$rows/effort-$model.jsonl" "$out/" 2>/dev/null
    echo "== $model"; tail -n 12 "$out/effort-$model.log"
done
