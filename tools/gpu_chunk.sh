#!/usr/bin/env bash
# One chunk (< 10 min) of GPU training of the shipped models, on a remote GPU machine.
#
#   [MODELS="mse"] bash tools/gpu_chunk.sh MINUTES LR LR_FINAL DECAY_START [EMA_DECAY]
#
# MODELS (default "mse msssim") picks the shipped models to train; one alone gets the whole GPU.
# Run by the device tool with carry [".whl", "runs/gpu-pack.npz", "runs/kodak-eval"] (see
# tools/README.md). Each model resumes runs/gpu-NAME/last.ckpt (optimizer and schedule state)
# while the machine stays warm, else starts from the shipped weights. The models train at
# once on the one GPU. Portable fp32 parameters and the logs land in $OUT.
set -uo pipefail
minutes=${1:?minutes}; lr=${2:?lr}; lr_final=${3:?lr_final}; decay_start=${4:?decay_start}
ema_decay=${5:-0}  # 0: off; e.g. 0.999 evaluates and sends back the moving average
models=${MODELS:-mse msssim}
source "$(dirname "$0")/gpu_env.sh"
check_models $models
out=${OUT:-runs/gpu-out}
mkdir -p "$out"
prepare_machine
for model in $models; do
    metric=$([ "$model" = msssim ] && echo ms-ssim || echo mse)
    "$PYTHON" tools/train.py --name "gpu-$model" --metric "$metric" --data runs/gpu-pack.npz \
        --device cuda --init "neuralcodec/weights/$model.pt" --minutes "$minutes" \
        --batch-size 16 --crop 256 --lr "$lr" --lr-final "$lr_final" --decay-start "$decay_start" \
        --warmup 100 --eval-dir runs/kodak-eval --eval-every 1000 --checkpoint-every 1000 \
        --threads 4 --ema-decay "$ema_decay" --portable-out "$out/$model" > "runs/gpu-$model.out" 2>&1 &
done
wait
for model in $models; do
    echo "== $model"; tr '\r' '\n' < "runs/gpu-$model.out" | grep -v '^\s*$' | tail -n 15
    cat "runs/gpu-$model/log.csv"
done > "$out/logs.txt"
tail -c 6000 "$out/logs.txt"
