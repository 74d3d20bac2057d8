# Sourced by the scripts of a GPU visit (bench/gpu_session.sh, bench/gpu_infer_session.sh):
# the log's time stamps, a time budget for the whole visit, and the packages carried to .whl/.
#
# BUDGET_S (default 540, under a device call's 600) counts from the moment this is sourced.
# SITE=0 skips unpacking and PY picks the interpreter (default python3), for a dry run here.

PY=${PY:-python3}
DEADLINE=$(( $(date +%s) + ${BUDGET_S:-540} ))
export PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1

say() { echo "[$(date -u +%T)] $*"; }

# left: seconds left of the budget.
left() { echo $(( DEADLINE - $(date +%s) )); }

# within MAX MIN CMD...: CMD under `timeout` of MAX seconds or what is left of the budget, whichever
# is less; skipped, and said so, when less than MIN seconds are left.
within() {
    local max=$1 min=$2 rest
    rest=$(left)
    shift 2
    if (( rest < min )); then say "skipped, ${rest} s left: $*"; return 0; fi
    timeout $(( rest < max ? rest : max )) "$@"
}

# unpack_packages: what bench/gpu_bundle.sh packed and the calls carried to .whl/, unpacked under /tmp
# and put on PYTHONPATH before what it held: the site's parts when carried, onnxruntime-gpu's when every
# part is there.
unpack_packages() {
    local given=${PYTHONPATH:+:$PYTHONPATH}
    export PYTHONPATH=.$given
    if [ "${SITE:-1}" = 0 ]; then return 0; fi
    if ! compgen -G ".whl/site.tar.xz.part-*" >/dev/null; then
        say "no site parts in .whl/: the image's own packages"
        return 0
    fi
    mkdir -p /tmp/site /tmp/ort
    cat .whl/site.tar.xz.part-* | tar -C /tmp/site -xJf - || return 1
    if cat .whl/ort-gpu.tar.xz.part-* 2>/dev/null | xz -t 2>/dev/null; then
        cat .whl/ort-gpu.tar.xz.part-* | tar -C /tmp/ort -xJf - || return 1
        # preload_dlls looks for the nvidia-* wheels' libraries beside the onnxruntime package
        local nvidia
        nvidia=$($PY -c "import nvidia; print(list(nvidia.__path__)[0])") && ln -sfn "$nvidia" /tmp/ort/nvidia
    fi
    export PYTHONPATH=.:/tmp/ort:/tmp/site$given
}
