#!/usr/bin/env bash
# demo.sh (make demo): from a fresh clone, installs what is missing, builds, plans
# models/fmnist_cnn.yaml for this machine into generated/fmnist_cnn/, builds the stages and trains
# the model as a pipeline with PipeDream's 1F1B and weight stashing, printing progress, the final
# test accuracy and predicted against measured time per minibatch.
# The default plan for a 2-core machine is one stage on 2 replicas (plain data parallelism, not a
# pipeline); it runs, but measured on this machine (bench/cpu_pipeline.sh, 200 steps) it was no
# faster than the 2-stage pipeline (0.98x against 0.92x of the single process, on a loaded
# machine), so the demo keeps --straight: every core gets its own stage, and it shows a pipeline.
# The model's default epochs (2) and learning rate (0.02, in models/fmnist_cnn.yaml) are kept:
# with 1F1B's one-step-stale weights on stage 0 and momentum 0.9, lr 0.05 reached 83.9% test
# accuracy in 2 epochs, 0.02 reached 86% after the first epoch (measured on this machine).
# Extra arguments go to pdlaunch and win (e.g. `bash scripts/demo.sh --epochs 1 --lr 0.05`).
set -eu
cd "$(dirname "$0")/.."
start=$(date +%s)
make -s deps
make -s -j2 bin/pdplan runtime # what the demo runs (`make` also builds pdprof, with the GPU kernels where nvcc is)
out=generated/fmnist_cnn
mkdir -p "$out"
workers=$(nproc)                 # one stage per core, between 2 and 4 stages
[ "$workers" -ge 2 ] || workers=2
[ "$workers" -le 4 ] || workers=4
echo "demo: planning models/fmnist_cnn.yaml as a straight pipeline over $workers workers"
bin/pdplan models/fmnist_cnn.yaml -n "$workers" -b 1e10 --straight -o "$out"
make -s -C "$out"
echo "demo: training (scripts/pdlaunch $out $*)"
t0=$(date +%s)
scripts/pdlaunch "$out" "$@"
t1=$(date +%s)
acc=$(grep -o '"test_accuracy": [0-9.]*' "$out/run/summary.json" | grep -o '[0-9.]*$' || true)
echo "demo: test accuracy ${acc:-?}; training $((t1 - t0)) s; whole demo $((t1 - start)) s"
echo "demo: summary in $out/run/summary.json"
