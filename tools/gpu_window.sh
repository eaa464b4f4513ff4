#!/usr/bin/env bash
# One GPU window in one command, on a remote GPU machine: measure, train both models, export,
# evaluate on Kodak, and leave in $OUT everything the next session needs (8 files at most).
#
#   bash tools/gpu_window.sh MINUTES      # MINUTES: the whole command's budget (the device tool allows 10)
#
# Carry [".whl", "runs/gpu-pack.npz", "runs/kodak24"] and, from the second window on,
# "runs/gpu-state" (tools/README.md, "Next GPU run"). Phases, each under its own time limit, a
# failure of one logged and the next one run:
#   1. start (START=1): the CUDA paths of the tests, benchmarks.speed, tools/train_throughput.py
#      (alone on the GPU, so their timings hold); then benchmarks.rd of JPEG and the shipped models
#      on Kodak, beside the training (its numbers do not depend on timing).
#   2. training: both models at once (two processes, or ONE_PROCESS=1: one process, --also) until
#      EVAL_MINUTES before the end; a model whose training fails (a TRAIN_FLAGS option this
#      machine cannot run, say) trains the time that is left with FALLBACK_FLAGS (default none:
#      host crops, unfused Adam, as the earlier GPU runs). Each resumes runs/gpu-MODEL/last.ckpt (a second call while the
#      machine is warm), else STATE/MODEL (the portable folder an earlier window returned), else
#      the shipped weights. Checkpoints every 500 steps, written into $OUT as they are made: a
#      call killed midway returns the state of its last checkpoint.
#   3. export (calibrated on the pack) and benchmarks.rd of each trained model on Kodak, with JPEG;
#      then tools/high_fidelity.py at its top two levels (quality 100 and one level below).
# $OUT: MODEL/params-00.pt + MODEL/portable.json (fp16 kernels: the next window's STATE/MODEL),
# weights/MODEL-gpu.pt (the exported file that was evaluated), results.tar.gz (logs, tables,
# benchmark JSON) and summary.txt. DEVICE=cpu runs the same on the CPU (its test, tiny settings).
# ARCHITECTURE=mean-scale-checkerboard trains the checkerboard context jointly with the transforms
# (default: each model's shipped architecture where it starts from the shipped weights, else the
# hyperprior);
# CONTEXT=PATH (MODEL in it replaced by each model's name) is the context a model starts from when
# it does not resume STATE/MODEL (tools/README.md, "Joint checkerboard training on the GPU").
set -uo pipefail
minutes=${1:?minutes}
models=${MODELS:-mse msssim}
device=${DEVICE:-cuda}
pack=${PACK:-runs/gpu-pack.npz}
kodak=${KODAK:-runs/kodak24}
state=${STATE:-runs/gpu-state}
start_phase=${START:-1}
eval_minutes=${EVAL_MINUTES:-2.5}
eval_qualities=${EVAL_QUALITIES:+--qualities $EVAL_QUALITIES}  # default: the benchmark's own sweep
lr=${LR:-1e-4}; lr_final=${LR_FINAL:-1e-5}; decay_start=${DECAY_START:-1.0}; ema=${EMA:-0.999}
crop=${CROP:-256}; batch=${BATCH:-16}; seed=${SEED:-$(date +%s)}
train_flags=${TRAIN_FLAGS:---crops device --fused-adam}
model_flags=${MODEL_FLAGS:-}          # e.g. the test's tiny model: --N 16 --M 24 --levels 3
shipped_init=${SHIPPED_INIT:-1}       # 0: a fresh model where no state is found (the test)
architecture=${ARCHITECTURE:-}
context=${CONTEXT:-}                  # e.g. runs/context-MODEL.pt (with ARCHITECTURE=mean-scale-checkerboard)
tests=${TESTS-tests/test_codec.py tests/test_cli.py tests/training/test_data.py tests/training/test_train.py tests/training/test_checkerboard_training.py}
tests_k=${TESTS_K:-cuda or device or two_models or train_resume or joint_training}  # the tests whose paths reach CUDA
speed_args=${SPEED_ARGS:---limit 4 --repeats 3}
rd_codecs=${RD_CODECS:-jpeg,neuralcodec}
rd_limit=${RD_LIMIT:-0}
throughput=${THROUGHPUT-bf16:256:16:host bf16:256:16:device bf16:256:16:device:fused bf16:256:32:device:fused bf16:256:16:device:fused:pair bf16:256:16:device:fused:compile}
source "$(dirname "$0")/gpu_env.sh"
check_models $models
for model in $models; do  # a context named for a model that starts afresh must be here, before anything starts
    if [ -n "$context" ] && [ ! -f "$state/$model/portable.json" ] && [ ! -f "${context//MODEL/$model}" ]; then
        echo "CONTEXT: no ${context//MODEL/$model} for $model" >&2; exit 2
    fi
done
out=${OUT:-runs/gpu-out}
work=${WORK:-runs/gpu-window}
runs=${RUNS:-runs}
deadline=$("$PYTHON" -c "import time, sys; print(int(time.time() + float(sys.argv[1]) * 60))" "$minutes")
left() { echo $(( deadline - $(date +%s) )); }
within() { local s=$(( $(left) - $1 )); [ "$s" -lt 20 ] && s=20; echo "$s"; }  # seconds, at least 20
mkdir -p "$out" "$work"
prepare_machine > "$work/machine.txt" 2>&1  # not in a pipe: it exports PYTHONPATH (the carried wheels)
cat "$work/machine.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # tools/*.py import neuralcodec from this checkout
echo "seed $seed, minutes $minutes, models $models, device $device, flags $train_flags $model_flags, ${architecture:-shipped architectures}${context:+ from $context}" >> "$work/machine.txt"

# Kodak as the benchmarks read it: PNG (it may travel as lossless WebP, 24 % smaller, same pixels).
images="$work/kodak"
"$PYTHON" - "$kodak" "$images" <<'PY'
import sys
from pathlib import Path
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for f in sorted(src.iterdir()):
    if f.suffix.lower() in (".png", ".webp") and not (dst / f"{f.stem}.png").exists():
        Image.open(f).save(dst / f"{f.stem}.png")
PY

rd_pid=""
if [ "$start_phase" = 1 ]; then
    if [ -n "$tests" ]; then  # device-parametrised tests run on cuda too; training tests use auto (CUDA)
        timeout 90 "$PYTHON" -m pytest -q -p no:cacheprovider -k "$tests_k" $tests > "$work/tests.log" 2>&1
        echo "tests: exit $? ($(tail -n 1 "$work/tests.log"))" >> "$work/machine.txt"
    fi
    timeout 60 "$PYTHON" -m benchmarks.speed --dataset "$images" $speed_args --device "$device" --no-cold \
        --codecs neuralcodec --out "$work/speed" > "$work/speed.log" 2>&1 || echo "speed: failed or cut ($?)" >> "$work/machine.txt"
    if [ -n "$throughput" ]; then
        timeout 120 "$PYTHON" tools/train_throughput.py --device "$device" --threads 4 --steps 20 --warmup 5 \
            --data "$pack" --setups $throughput > "$work/throughput.md" 2>&1 || echo "throughput: failed or cut ($?)" >> "$work/machine.txt"
    fi
    timeout "$(within 20)" "$PYTHON" -m benchmarks.rd --dataset "$images" --limit "$rd_limit" \
        --codecs "$rd_codecs" --device "$device" --threads 4 --no-anchors --no-progress \
        --out "$work/rd-shipped" > "$work/rd-shipped.log" 2>&1 &
    rd_pid=$!
fi

# Training until EVAL_MINUTES before the end; its clock starts after loading (STARTUP_S allowed).
model_args() {  # MODEL: the per-model options of tools/train.py
    local model=$1 init=""
    # train.py resumes runs/gpu-MODEL/last.ckpt first; --init is named anyway, so that with --also
    # the second model never inherits the first one's
    if [ -f "$state/$model/portable.json" ]; then init="--init $state/$model"
    else
        [ "$shipped_init" = 1 ] && init="--init neuralcodec/weights/$model.pt"
        [ -n "$context" ] && init="$init --init-context ${context//MODEL/$model}"
    fi
    echo "--name gpu-$model --metric $([ "$model" = msssim ] && echo ms-ssim || echo mse) $init --portable-out $out/$model --architecture $(architecture_of "$model")"
}
architecture_of() {  # MODEL: ARCHITECTURE, else the shipped weights' own when training starts from them
    if [ -n "$architecture" ]; then echo "$architecture"
    elif [ "$shipped_init" = 1 ]; then
        "$PYTHON" -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=True).get('architecture', 'mean-scale-hyperprior'))" "neuralcodec/weights/$1.pt"
    else echo mean-scale-hyperprior
    fi
}
train_models() {  # ONE FLAGS MODEL...: train MODELs at once until the deadline; prints those that failed
    local one=$1 flags=$2 minutes common model failed="" pids=() i=0
    shift 2
    minutes=$("$PYTHON" -c "import sys; print(round((int(sys.argv[1]) - 60 * float(sys.argv[2]) - int(sys.argv[3])) / 60, 2))" \
        "$(left)" "$eval_minutes" "${STARTUP_S:-30}")
    if "$PYTHON" -c "import sys; sys.exit(float(sys.argv[1]) >= 0.2)" "$minutes"; then
        echo "training: no time left ($minutes min)" >> "$work/machine.txt"
        return
    fi
    common="--runs-dir $runs --data $pack --device $device --minutes $minutes --batch-size $batch --crop $crop \
--lr $lr --lr-final $lr_final --decay-start $decay_start --warmup 100 --eval-dir $images --eval-images 4 \
--eval-every 1000 --checkpoint-every 500 --threads 4 --ema-decay $ema --portable-fp16 --seed $seed $flags"
    if [ "$one" = 1 ] && [ $# = 2 ]; then
        "$PYTHON" tools/train.py $common $(model_args "$1") $model_flags \
            --also "$(model_args "$2") $model_flags" >> "$work/train-$1-$2.out" 2>&1 || echo "$1 $2"
        return
    fi
    for model in "$@"; do
        "$PYTHON" tools/train.py $common $(model_args "$model") $model_flags >> "$work/train-$model.out" 2>&1 &
        pids+=($!)
    done
    for model in "$@"; do
        wait "${pids[$i]}" || failed="$failed $model"
        i=$((i + 1))
    done
    echo $failed
}
failed=$(train_models "${ONE_PROCESS:-0}" "$train_flags" $models)
if [ -n "$failed" ]; then  # e.g. a flag that fails on this machine: the rest of the time with FALLBACK_FLAGS
    echo "training with '$train_flags' failed for $failed; again with '${FALLBACK_FLAGS-}'" >> "$work/machine.txt"
    failed=$(train_models 0 "${FALLBACK_FLAGS-}" $failed)
    [ -n "$failed" ] && echo "training failed again for $failed" >> "$work/machine.txt"
fi
[ -n "$rd_pid" ] && wait "$rd_pid"

# Export what training sent to $OUT and measure it on Kodak, both models at once.
mkdir -p "$out/weights"
for model in $models; do
    if [ -f "$out/$model/portable.json" ]; then
        ( "$PYTHON" tools/export.py "$out/$model" --name "$model" --out "$out/weights/$model-gpu.pt" \
              --data "$pack" --calibration-crop "$crop" \
          && timeout "$(within 10)" "$PYTHON" -m benchmarks.rd --dataset "$images" --limit "$rd_limit" \
              --codecs "jpeg,neuralcodec:$out/weights/$model-gpu.pt" --device "$device" --threads 4 $eval_qualities \
              --no-anchors --no-progress --out "$work/rd-$model-gpu" \
          && timeout "$(within 5)" "$PYTHON" tools/high_fidelity.py --model "$out/weights/$model-gpu.pt" \
              --dataset "$images" --images 24 --extra 0 --levels top --device "$device" --threads 4 \
              > "$work/top-$model.md" ) > "$work/eval-$model.log" 2>&1 &
    fi
done
wait

# What comes back: the logs and results in one archive, a summary beside it.
for model in $models; do
    cp "$runs/gpu-$model/log.csv" "$work/log-$model.csv" 2>/dev/null
    cp "$runs/gpu-$model/config.json" "$work/config-$model.json" 2>/dev/null
done
{
    cat "$work/machine.txt"
    [ -f "$work/throughput.md" ] && cat "$work/throughput.md"
    for f in "$work"/train-*.out; do [ -f "$f" ] && { echo "== $f"; tr '\r' '\n' < "$f" | grep -E "step [0-9]+:|stopped|resumed|initialised|context from|Error" | tail -n 12; }; done
    for f in "$work"/rd-*/summary.md "$work"/top-*.md; do [ -f "$f" ] && { echo "== $f"; cat "$f"; }; done
} > "$out/summary.txt" 2>&1
tar czf "$out/results.tar.gz" --exclude=./kodak -C "$work" .
cat "$out/summary.txt"
echo "returned: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
[ "$(find "$out" -type f | wc -l)" -le 8 ] || echo "WARNING: more than 8 files in $OUT: some will not come back"
