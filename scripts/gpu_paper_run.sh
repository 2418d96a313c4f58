#!/usr/bin/env bash
# The one prepared GPU job: benchmark, then paper-profile training and evaluation of
# each compact data set, results into book/gpu_results/ and $OUT. benchmarks/README.md has the
# exact device-tool call.
#
#   bash scripts/gpu_paper_run.sh prepare   # HERE (no GPU): write .gpu_data/ from ../shared/data
#   bash scripts/gpu_paper_run.sh           # ON THE GPU MACHINE: everything else, within BUDGET_S
#
# Needs nothing from the network: the GPU machine's python3 has torch, numpy, scipy, scikit-learn,
# pillow, matplotlib and tqdm; ssae runs from this checkout (PYTHONPATH). Settings (environment):
#   BUDGET_S   seconds of work for the whole job (default 480; the stages below shrink to fit)
#   DEVICE     cuda (default) or cpu; SMOKE=1 trains the smoke profile (tests of this script)
#   MTD_MIN, BOTTLE_MIN, EMBEDDED_MIN  training minutes per data set (2.5, 1.5, 1.0)
#   EMBEDDED   embedded categories to train if time is left (default "carpet"; "" for none)
#   COMPILE=1  also time torch.compile at the end if time is left (default 1)
#   OUT        where the files to bring back go (the device tool sets it; default _build/gpu_out)
# Training runs live in runs/gpu/<name> (ignored by git): rerunning this script on the same
# machine resumes them up to the (new) minutes.
set -uo pipefail
cd "$(dirname "$0")/.."

DATA=.gpu_data
if [ "${1:-}" = prepare ]; then
  set -e
  SHARED=${SHARED:-../shared/data}
  if ! git check-ignore -q "$DATA/x" 2>/dev/null; then
    mkdir -p .git/info && echo "/$DATA/" >> .git/info/exclude   # keep the copy out of git; the device tool carries it
  fi
  python3 scripts/compact_data.py "$SHARED/mtd" --out "$DATA/mtd" --size 384 --format jpg --quality 90
  python3 scripts/compact_data.py "$SHARED/mvtec_ad/bottle" --out "$DATA/bottle" --size 256 --format jpg --quality 95
  echo "$(git rev-parse HEAD)$(git status --porcelain --untracked-files=no | grep -q . && echo ' (with uncommitted changes)')" > "$DATA/COMMIT"
  du -sh --apparent-size "$DATA"
  echo "now call the device tool as benchmarks/README.md says (carry [\"$DATA\"])"
  exit 0
fi

BUDGET_S=${BUDGET_S:-480}
DEVICE=${DEVICE:-cuda}
MTD_MIN=${MTD_MIN:-2.5}
BOTTLE_MIN=${BOTTLE_MIN:-1.5}
EMBEDDED_MIN=${EMBEDDED_MIN:-1.0}
EMBEDDED=${EMBEDDED-carpet}
COMPILE=${COMPILE:-1}
OUT=${OUT:-_build/gpu_out}
RESULTS=${RESULTS:-book/gpu_results}
RUNS=${RUNS:-runs/gpu}
PROFILE=paper
BENCH_ARGS=(--device "$DEVICE")
if [ "${SMOKE:-0}" = 1 ]; then
  PROFILE=smoke
  BENCH_ARGS=(--device "$DEVICE" --quick --pipelines ssae --no-patchcore)
fi
mkdir -p "$OUT" "$RESULTS/benchmark" "$RUNS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ -f "$DATA/COMMIT" ] && export SSAE_GIT_COMMIT="${SSAE_GIT_COMMIT:-$(cat "$DATA/COMMIT")}"
export SSAE_CACHE=${SSAE_CACHE:-$PWD/.cache}      # embedded data generated here, not in $HOME
LOG="$OUT/log.txt"
exec > >(tee -a "$LOG") 2>&1

left() { echo $(( BUDGET_S - SECONDS )); }
stamp() { echo "=== [$(date -u +%H:%M:%S), ${SECONDS}s, $(left)s left] $*"; }
pack() {  # what comes back: the results folder as one archive (the tool brings back <= 8 files)
  local tmp="$OUT/.pack.$BASHPID.tmp"   # per process: fanned-out jobs may pack at the same time
  tar -czf "$tmp" -C "$RESULTS" . && mv -f "$tmp" "$OUT/gpu_results.tar.gz"
}
# minutes that fit: min(wanted, (seconds left - reserve) / 60), "" if under 0.3 minutes
fit() { python3 -c "import sys; w, l, r = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]); m = min(w, (l - r) / 60); print(f'{m:.2f}' if m >= 0.3 else '')" "$1" "$(left)" "$2"; }

stamp "start: commit ${SSAE_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)} on $(hostname)"
{ nvidia-smi -L || true; } 2>/dev/null
python3 -c "import sys, torch; from ssae.hardware import hardware; print('python', sys.version.split()[0], 'torch', torch.__version__, hardware('$DEVICE'))"
ls "$DATA" 2>/dev/null || echo "no $DATA/: only embedded data will be trained (run 'prepare' here and carry $DATA)"

# 1. speed: training, inference, PatchCore-style scorer (about a minute on an H200)
stamp "benchmark"
timeout 240 python3 benchmarks/gpu.py "${BENCH_ARGS[@]}" --json "$RESULTS/benchmark/gpu.json" \
  && cp "$RESULTS/benchmark/gpu.json" "$OUT/benchmark.json" || echo "benchmark failed or timed out"
pack

# 2. paper-scale results, one data set at a time (each an independent job; see fan-out below)
train_eval() {  # name data minutes reserve_s [extra args]
  local name=$1 data=$2 want=$3 reserve=$4; shift 4
  local minutes; minutes=$(fit "$want" "$reserve")
  if [ -z "$minutes" ]; then stamp "skip $name: too little time left"; return 0; fi
  stamp "$name: train $minutes min + evaluate"
  local limit; limit=$(python3 -c "print(int(min(float('$minutes') * 60 + 2 * $reserve, max(60, $(left) - 5))))")
  # the paper profile with one explicit departure: bf16 training (more steps in the minutes given)
  timeout "$limit" python3 benchmarks/paper_run.py --name "$name" --data "$data" --profile "$PROFILE" \
    --set train.amp=true --device "$DEVICE" --minutes "$minutes" --steps auto --benchmark "$RESULTS/benchmark/gpu.json" \
    --runs "$RUNS" --results "$RESULTS" "$@" || echo "$name failed or timed out (status $?)"
  pack
}

JOBS=()
[ -d "$DATA/mtd" ] && JOBS+=("mtd|$DATA/mtd|$MTD_MIN|120|")
[ -d "$DATA/bottle" ] && JOBS+=("bottle|$DATA/bottle|$BOTTLE_MIN|60|--image-size 256")
for cat in $EMBEDDED; do JOBS+=("embedded_$cat|embedded:$cat|$EMBEDDED_MIN|90|--image-size 256"); done

# NGPU: GPUs to fan out over (default: all that nvidia-smi lists; NGPU=2 on a CPU tests the fan-out)
if [ -z "${NGPU:-}" ]; then
  NGPU=1
  if [ "$DEVICE" = cuda ]; then NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU'); fi
fi
[ "${NGPU:-0}" -ge 1 ] 2>/dev/null || NGPU=1
if [ "$NGPU" -gt 1 ]; then
  # fan-out: several GPUs, one independent job per GPU at a time
  stamp "fan-out over $NGPU GPUs"
  i=0; pids=()
  for job in "${JOBS[@]}"; do
    IFS='|' read -r name data want reserve extra <<< "$job"
    # shellcheck disable=SC2086
    CUDA_VISIBLE_DEVICES=$(( i % NGPU )) train_eval "$name" "$data" "$want" "$reserve" $extra &
    pids+=($!)
    i=$(( i + 1 ))
    # wait for these jobs by id: a bare `wait` would also wait for the log's tee, for ever
    if (( i % NGPU == 0 )); then wait "${pids[@]}"; pids=(); fi
  done
  [ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
else
  for job in "${JOBS[@]}"; do
    IFS='|' read -r name data want reserve extra <<< "$job"
    # shellcheck disable=SC2086
    train_eval "$name" "$data" "$want" "$reserve" $extra
  done
fi

# 3. optional: torch.compile (compilation takes a minute or two)
if [ "$COMPILE" = 1 ] && [ "$(left)" -gt 150 ] && [ "${SMOKE:-0}" != 1 ]; then
  stamp "benchmark with torch.compile"
  timeout $(( $(left) - 10 )) python3 benchmarks/gpu.py --device "$DEVICE" --compile --pipelines syncfree \
    --no-patchcore --json "$RESULTS/benchmark/gpu_compile.json" || echo "compiled benchmark failed or timed out"
  pack
fi

stamp "done; results in $RESULTS and $OUT/gpu_results.tar.gz"
ls -la "$RESULTS" "$OUT"
