#!/usr/bin/env bash
# time_to_accuracy.sh: time to a test accuracy (default 85%) on models/fmnist_cnn.yaml with the
# two cores, measured as a user measures it (wall time from the first step, the periodic
# evaluations included), the test accuracy checked every EVERY (default 100) steps in all three:
#   - ours, a 2-stage 1F1B pipeline (pdplan -n 2 --straight);
#   - ours, 2-way data parallelism (pdplan -n 2: one stage on 2 replicas, 1F1B-RR);
#   - PyTorch with 2 threads (bench/torch_fmnist_cnn.py, the same model, optimizer and batch),
#     and for reference with 1 thread (on a busy machine its 2 threads slow down far more).
# One run each, back to back; prints each time, step and training samples/s, and ours over
# PyTorch's time (target: the better of ours at most 0.6x). The machine's other load shifts all
# three alike only roughly: run it a few times, or on a quiet machine, before believing a ratio.
# Needs Fashion-MNIST (make deps); PyTorch (apt-get install python3-torch) for its line and the
# ratios, else those are skipped with a note.
# Usage: bench/time_to_accuracy.sh [TARGET (0.85)] [EVERY (100)] [EPOCHS (3)]
set -eu
cd "$(dirname "$0")/.."
target=${1:-0.85}
every=${2:-100}
epochs=${3:-3}
model=models/fmnist_cnn.yaml
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
    { echo "bench: no Fashion-MNIST (make deps installs dataset-fashion-mnist)" >&2; exit 1; }
make -s -j2
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
bin/pdplan "$model" -n 2 -b 1e10 --straight -q -o "$gen/pipeline"
bin/pdplan "$model" -n 2 -b 1e10 -q -o "$gen/dp"
grep -q 'stage 0 binary stage_0 replicas 2' "$gen/dp/launch.conf" ||
    { echo "bench: pdplan -n 2 did not make 2-way data parallelism:" >&2; cat "$gen/dp/launch.conf" >&2; exit 1; }
make -s -C "$gen/pipeline" && make -s -C "$gen/dp"

ours() { # label folder: "SECONDS STEP SAMPLES_PER_S" from its summary.json ("- - S" if not reached)
    scripts/pdlaunch "$gen/$2" --epochs "$epochs" --eval-every "$every" --target-accuracy "$target" \
        --no-trace --log-every 1000 >"$gen/$1.log" 2>&1 ||
        { cat "$gen/$1.log" >&2; echo "bench: $1 failed" >&2; exit 1; }
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
t = d.get("time_to_target_s")
print("%s %s %.1f" % ("%.2f" % t if t is not None else "-", d.get("target_step") or "-", d["samples_per_s"]))' \
        "$gen/$2/run/summary.json"
}
pipe=$(ours pipeline pipeline)
dp=$(ours dp dp)
torch_run() { # threads: "SECONDS STEP SAMPLES_PER_S"
    /usr/bin/python3 bench/torch_fmnist_cnn.py "$1" "$every" "$target" "$epochs" >"$gen/torch$1.log" 2>&1 ||
        { cat "$gen/torch$1.log" >&2; echo "bench: PyTorch failed" >&2; exit 1; }
    awk '/time_to_target_s=/ { split($2, a, "="); t = a[2]; s = "-"
                               if ($3 ~ /^step=/) { split($3, b, "="); s = b[2] } }
         /samples\/s=/ { split($3, c, "="); r = c[2] }
         END { if (t == "" || t == "not") t = "-"; print t, s, r }' "$gen/torch$1.log"
}
torch="- - -" torch1="- - -"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    torch=$(torch_run 2)
    torch1=$(torch_run 1) # for reference: its two threads suffer most when other load shares the cores
else
    echo "note: no PyTorch (apt-get install python3-torch): no PyTorch line, no ratios" >&2
fi

echo "time to $target test accuracy on fmnist_cnn, evaluated every $every steps, 2 cores, one run each"
printf '%-34s %12s %8s %12s\n' "" "seconds" "step" "samples/s"
read -r pt ps pr <<<"$pipe"; read -r dt ds dr <<<"$dp"; read -r tt ts tr <<<"$torch"
read -r t1 s1 r1 <<<"$torch1"
printf '%-34s %12s %8s %12s\n' "ours: 2-stage 1F1B pipeline" "$pt" "$ps" "$pr" \
    "ours: 2-way data parallelism" "$dt" "$ds" "$dr" "PyTorch, 2 threads" "$tt" "$ts" "$tr" \
    "PyTorch, 1 thread (reference)" "$t1" "$s1" "$r1"
awk -v p="$pt" -v d="$dt" -v t="$tt" -v t1="$t1" 'BEGIN {
    if (t == "-" || t + 0 <= 0) { print "no PyTorch time: no ratios"; exit }
    if (p != "-") printf "pipeline / PyTorch: %.2fx the time\n", p / t
    if (d != "-") printf "data parallel / PyTorch: %.2fx the time\n", d / t
    b = p == "-" ? d : (d == "-" ? p : (p + 0 < d + 0 ? p : d))
    if (b != "-") printf "better of ours / PyTorch: %.2fx the time (target: at most 0.6x)\n", b / t
    if (b != "-" && t1 != "-" && t1 + 0 < t + 0)
        printf "better of ours / PyTorch with 1 thread (its faster run): %.2fx the time\n", b / t1
}'
