#!/usr/bin/env bash
# The reference models kept in models/: train one data set's models for hours on one CPU core
# each (two side by side), each evaluating itself on a learning curve, then pack them.
#
#   bash benchmarks/reference_runs.sh NAME DATA [MINUTES] [SETTINGS...]   # train (resumable)
#   bash benchmarks/reference_runs.sh --pack NAME                         # pack into models/NAME/
#   MODELS=ssae bash benchmarks/reference_runs.sh NAME DATA [MINUTES]     # the method alone
#
# NAME is the folder of models/ (e.g. aitex-fabric01), DATA the data folder (e.g.
# ../shared/data/aitex/fabric01), MINUTES the training budget of each model (default 120), and
# SETTINGS extra `ssae train` options for both models (e.g. --settings mtd-64px). The method
# (`ssae`) and the plain autoencoder (`plain`: the same settings, --corruption none) train in
# the background into runs/ref/NAME/, one thread each, logs beside them (MODELS picks which of
# the two, default both; the bottle copy keeps the method alone). The time budget ends
# each run (the step cap is out of reach even at 64 px); rerunning the same
# command resumes them, also with a larger MINUTES. --pack writes models/NAME/ssae (with the
# blur reference's metrics) and models/NAME/plain from the finished runs (side by side), updates
# README.md and measures the new models' thresholds into benchmarks/results/thresholds.json.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  PY=python3
  [ -x .venv/bin/python ] && PY=.venv/bin/python
fi
if [ "${1:-}" = "--pack" ]; then
  name=$2
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1   # the two packs side by side, one core each
  $PY -m ssae.cli pack "runs/ref/$name/ssae" --out "models/$name/ssae" --blur & ssae=$!
  plain=
  if [ -d "runs/ref/$name/plain" ]; then
    $PY -m ssae.cli pack "runs/ref/$name/plain" --out "models/$name/plain" & plain=$!
  fi
  wait $ssae
  [ -z "$plain" ] || wait $plain
  $PY -m ssae_book.readme
  $PY benchmarks/thresholds.py --only "$name" --merge --json benchmarks/results/thresholds.json
  exit 0
fi
name=$1; data=$2; minutes=${3:-120}; shift $(( $# < 3 ? $# : 3 ))
models=${MODELS:-ssae plain}
for model in $models; do
  case $model in ssae|plain) ;; *) echo "MODELS: unknown model '$model' (ssae, plain)" >&2; exit 2;; esac
done
mkdir -p "runs/ref/$name"
for model in $models; do
  extra=()
  [ "$model" = plain ] && extra=(--corruption none)
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup $PY -m ssae.cli train --data "$data" --out "runs/ref/$name/$model" \
    --profile cpu --minutes "$minutes" --steps 1000000 --curve "$@" "${extra[@]}" \
    >> "runs/ref/$name/$model.log" 2>&1 &
  echo "training runs/ref/$name/$model in the background (log runs/ref/$name/$model.log)"
done
