# Sourced by the tools/gpu_*.sh scripts, which run on a remote GPU machine (it reaches no registry).
PYTHON=${PYTHON:-python3}  # the interpreter they run

# check_models MODEL...: exit 2, before anything starts, unless each is a shipped model.
check_models() {
    for model in "$@"; do
        case $model in mse | msssim) ;; *) echo "MODELS: unknown model '$model' (mse, msssim)" >&2; exit 2 ;; esac
    done
}

# prepare_machine: install the carried wheels (.whl/: constriction, pytorch-msssim;
# tools/README.md) into /tmp/site, put them and the checkout on PYTHONPATH, print the GPU.
prepare_machine() {
    if [ -d .whl ]; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site:$PWD
    fi
    export PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no NVIDIA GPU here"
}
