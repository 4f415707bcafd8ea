#!/usr/bin/env bash
# planner.sh: pdplan's wall time and peak memory on the bundled models and on generated graphs of
# growing size (chains, Inception-like and GNMT-like DAGs, hierarchies), under both cost models,
# and the GLPK certificate's time. Prints one table row per run. See bench/README.md.
#   bash bench/planner.sh            (builds bin/pdplan first if needed)
#   PDPLAN=path/to/pdplan LIMIT=60 bash bench/planner.sh
# Each run is capped at LIMIT seconds (default 15); a run that hits it prints "timeout".
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PDPLAN=${PDPLAN:-$ROOT/bin/pdplan}
LIMIT=${LIMIT:-15}
if [ ! -x "$PDPLAN" ]; then make -s bin/pdplan >/dev/null || exit 1; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# a private copy, so that a rebuild of bin/pdplan during the bench cannot break a run
cp "$PDPLAN" "$WORK/pdplan" && PDPLAN=$WORK/pdplan
GEN="bash bench/gen_graphtxt.sh"

# Peak memory: GNU time when installed, else none (bash's time gives only the wall time).
if [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1; then HAVE_TIME=1; else HAVE_TIME=0; fi

val() { sed -n "s/^ *$2: //p" "$1" 2>/dev/null | head -1; }

printf '%-40s %6s %8s %-9s %9s %9s %13s %-5s %-22s\n' case nodes workers model wall_s peak_MiB \
    bottleneck_ms exact "certificate (s)"
printf '%s\n' "$(printf '%.0s-' {1..130})"

# run NAME ARGS...: plans with ARGS, prints the row
run() {
    local name=$1; shift
    local out="$WORK/out" log="$WORK/log" tm="$WORK/time"
    rm -rf "$out"
    local start end rc wall peak="-" cpu=""
    start=$(date +%s.%N)
    if [ "$HAVE_TIME" = 1 ]; then
        # time outside timeout: the peak then covers a run that timeout stops, too
        /usr/bin/time -o "$tm" -f '%M %U %S' timeout -k 5 "$LIMIT" "$PDPLAN" "$@" -q --no-codegen \
            -o "$out" >"$log" 2>&1
        rc=$?
    else
        timeout -k 5 "$LIMIT" "$PDPLAN" "$@" -q --no-codegen -o "$out" >"$log" 2>&1
        rc=$?
    fi
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    if [ "$HAVE_TIME" = 1 ] && [ -s "$tm" ]; then
        peak=$(awk '/^[0-9]+ [0-9.]+ [0-9.]+$/ { printf "%.1f", $1 / 1024 }' "$tm" | tail -1)
        cpu=$(awk '/^[0-9]+ [0-9.]+ [0-9.]+$/ { printf "%.2f", $2 + $3 }' "$tm" | tail -1)
    fi
    local p="$out/plan.yaml" cm="default" a
    for a in "$@"; do [ "$a" = pipedream ] && cm=compat; done
    LAST_WALL=$wall LAST_OK=0 LAST_EXACT="" LAST_PEAK=$peak LAST_CPU=${cpu:-$wall}
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        LAST_WALL=">$LIMIT"
        printf '%-40s %6s %8s %-9s %9s %9s %13s %-5s %-22s\n' "$name" - - "$cm" ">$LIMIT" \
            ">$peak" timeout - -
        return
    fi
    if [ "$rc" -ne 0 ] || [ ! -f "$p" ]; then
        printf '%-40s %6s %8s %-9s %9s %9s %13s %-5s %-22s\n' "$name" - - "$cm" "$wall" \
            "$peak" "exit $rc" - "$(grep -m1 error "$log" | cut -c1-40)"
        return
    fi
    local st cert
    LAST_OK=1 LAST_EXACT=$(val "$p" exact)
    # not exact: the proven gap to the lower bound, in percent
    [ "$LAST_EXACT" = false ] && LAST_EXACT="false, gap $(awk -v g="$(val "$p" lower_bound_gap)" \
        'BEGIN { printf "%.2f%%", 100 * g }')"
    st=$(val "$p" status)
    if [ "$st" = skipped ]; then cert=skipped
    else cert="$st ($(awk -v s="$(val "$p" seconds)" 'BEGIN { printf "%.2f", s }'))"; fi
    printf '%-40s %6s %8s %-9s %9s %9s %13.3f %-5s %-22s\n' "$name" "$(val "$p" nodes)" \
        "$(val "$p" workers)/$(sed -n 's/^  workers: //p' "$p")" "$cm" "$wall" "$peak" \
        "$(val "$p" bottleneck_ms)" "$(val "$p" exact)" "$cert"
}

# target "what" SECONDS [wall]: after a run, notes whether it met the issue's time target, judged
# on the run's CPU time (user + sys, from GNU time; the wall time when that is missing), since the
# machine may be shared; with "wall", on the wall time (runs whose inner levels use several
# threads, where the CPU time adds up the threads)
TARGETS=()
target() {
    local verdict="NOT MET" judged=$LAST_CPU
    [ "${3:-}" = wall ] && judged=$LAST_WALL
    if [ "$LAST_OK" = 1 ] && awk -v w="$judged" -v t="$2" 'BEGIN { exit !(w < t) }'; then
        verdict="met"
    fi
    TARGETS+=("$(printf '%-58s target %3s s: %-7s (CPU %s s, wall %s s, %s MiB, exact: %s)' \
        "$1" "$2" "$verdict" "$LAST_CPU" "$LAST_WALL" "$LAST_PEAK" "${LAST_EXACT:--}")")
}

# ---- bundled models ----
run "fmnist_cnn est cpu, 2" models/fmnist_cnn.yaml -n 2
run "vgg16 h200 profile, 4x4" models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 4 -b 1e11 1.25e10
run "vgg16 h200 profile, 4x4" models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 4 -b 1e11 1.25e10 --compat pipedream
run "alexnet h200 profile, 8" models/alexnet.yaml -p profiles/alexnet.h200.yaml -n 8 -b 1e10
run "resnet50 est h200, 16" models/resnet50.yaml --device h200 -n 16 -b 1e11
run "resnet50 est h200, 4x4" models/resnet50.yaml --device h200 -n 4 4 -b 1e11 1e10 --compat pipedream

run "gnmt16 est h200, 4x4" models/gnmt16.yaml --device h200 -n 4 4 -b 1e11 1e10 --compat pipedream
target "GNMT-16 model (estimated for h200) on 4x4, compat" 10

# ---- chains ----
for L in 10 100 1000; do
    $GEN chain $L >"$WORK/chain$L.txt"
    run "chain $L, 16" "$WORK/chain$L.txt" -n 16 -b 1e10
    run "chain $L, 16" "$WORK/chain$L.txt" -n 16 -b 1e10 --compat pipedream
done
run "chain 1000, 4x4" "$WORK/chain1000.txt" -n 4 4 -b 1e11 1e10
# the inner levels run on every processor (--threads, default); judged on the wall time, and
# again on one thread, judged on the CPU time
THREADS=$(nproc 2>/dev/null || echo 1)
run "chain 1000, 8x8x16 (1024 workers)" "$WORK/chain1000.txt" -n 8 8 16 -b 1e11 2.5e10 1e10
target "1,000-layer chain on 1,024 workers in 3 levels ($THREADS threads)" 1 wall
run "chain 1000, 8x8x16, 1 thread" "$WORK/chain1000.txt" -n 8 8 16 -b 1e11 2.5e10 1e10 --threads 1
target "the same on one thread" 1
run "chain 1000, 8x8x16 (1024 workers)" "$WORK/chain1000.txt" -n 8 8 16 -b 1e11 2.5e10 1e10 --compat pipedream
run "chain 1000, 16x8x8 (1024 workers)" "$WORK/chain1000.txt" -n 16 8 8 -b 1e11 2.5e10 1e10
target "1,000-layer chain on 1,024 workers in 3 levels (16x8x8, $THREADS threads)" 1 wall
run "chain 1000, 16x8x8, 1 thread" "$WORK/chain1000.txt" -n 16 8 8 -b 1e11 2.5e10 1e10 --threads 1
target "the same on one thread" 1
run "chain 1000, 256 one level" "$WORK/chain1000.txt" -n 256 -b 1e10
run "chain 1000, 1024 one level" "$WORK/chain1000.txt" -n 1024 -b 1e10
target "1,000-layer chain on 1,024 workers in one level" 1
run "chain 1000, 512 straight" "$WORK/chain1000.txt" -n 512 -b 1e10 --straight

# ---- branching DAGs: Inception-like cells (C cells x W branches x D layers) ----
for spec in "2 4 3" "4 4 3" "8 4 3" "4 6 3" "11 4 7"; do
    set -- $spec
    $GEN inception "$1" "$2" "$3" >"$WORK/inc.txt"
    run "inception ${1}x${2}x${3}, 16" "$WORK/inc.txt" -n 16 -b 1e10
done
target "Inception-v3-sized DAG (330 nodes, synthetic) on 16 workers" 10
run "inception 11x4x7, 16, max-states 5000" "$WORK/inc.txt" -n 16 -b 1e10 --max-states 5000
target "the same with --max-states 5000 (the lattice search over every ideal)" 10
run "inception 11x4x7, 16" "$WORK/inc.txt" -n 16 -b 1e10 --compat pipedream
# Inception-v3's shape (torchvision, with AuxLogits; conv, bn, relu nodes: 324 nodes, more than
# 200,000 downward-closed sets, like PipeDream's 326-node profile)
python3 bench/gen_inception_v3.py >"$WORK/incv3.txt"
run "inception-v3 shape, 16" "$WORK/incv3.txt" -n 16 -b 1e10
target "Inception-v3-shaped graph (324 nodes) on 16 workers" 10
run "inception-v3 shape, 16" "$WORK/incv3.txt" -n 16 -b 1e10 --compat pipedream
run "inception 11x4x7, 4x4" "$WORK/inc.txt" -n 4 4 -b 1e11 1e10

# ---- GNMT-like: two input chains with cross edges ----
for L in 12 24 48; do
    $GEN gnmt $L 2 >"$WORK/gnmt$L.txt"
    run "gnmt 2x$L cross/2, 4x4" "$WORK/gnmt$L.txt" -n 4 4 -b 1e11 1e10 --compat pipedream
done
target "GNMT-16-sized DAG (97 nodes, synthetic) on 4x4, compat" 10
run "gnmt 2x48 cross/2, 4x4" "$WORK/gnmt48.txt" -n 4 4 -b 1e11 1e10

# ---- PipeDream's own profiles (issue 15), when present: not committed (third-party). Get them
# from a clone of msr-fiddle/pipedream:
#   git show HEAD:profiler/translation/profiles/gnmt_large/graph.txt >DIR/gnmt_large.txt
#   git show HEAD:profiler/image_classification/profiles/inception_v3/graph.txt >DIR/inception_v3.txt
# and run with PIPEDREAM_PROFILES=DIR; skipped without them.
PP=${PIPEDREAM_PROFILES:-}
if [ -n "$PP" ] && [ -f "$PP/gnmt_large.txt" ]; then
    run "GNMT-16 profile, 16" "$PP/gnmt_large.txt" -n 16 -b 1e10
    target "GNMT-16 (PipeDream's profile) on 16, exact" 10
    run "GNMT-16 profile, 16" "$PP/gnmt_large.txt" -n 16 -b 1e10 --compat pipedream
    target "the same, compat" 10
    run "GNMT-16 profile, 4x4" "$PP/gnmt_large.txt" -n 4 4 -b 1e10 1.25e9
    target "GNMT-16 (PipeDream's profile) on 4x4, exact" 10
    run "GNMT-16 profile, 4x4" "$PP/gnmt_large.txt" -n 4 4 -b 1e10 1.25e9 --compat pipedream
    target "the same, compat (exact: the one-level bound, docs/planner.md)" 10
else
    echo "(PipeDream's GNMT-16 profile: set PIPEDREAM_PROFILES, see bench/planner.sh; skipped)"
fi
if [ -n "$PP" ] && [ -f "$PP/inception_v3.txt" ]; then
    # 221,565 ideals: the lattice search (planner/dp/lattice.c) over all of them; before it,
    # exact: false, gap 1.4% (compat 0.69%)
    run "Inception-v3 profile, 16" "$PP/inception_v3.txt" -n 16 -b 1.25e9
    target "Inception-v3 (PipeDream's profile) on 16, exact or gap < 0.1%" 10
    run "Inception-v3 profile, 16" "$PP/inception_v3.txt" -n 16 -b 1.25e9 --compat pipedream
    target "the same, compat" 10
fi

# ---- the certificate (GLPK) ----
$GEN chain 60 >"$WORK/chain60.txt"
run "verify: chain 60, 16" "$WORK/chain60.txt" -n 16 -b 1e10 --verify
target "certificate: 60 layers x 16 workers (plan + verify)" 10
run "verify: chain 60, 16" "$WORK/chain60.txt" -n 16 -b 1e10 --verify --compat pipedream
run "verify: chain 60, 16 straight" "$WORK/chain60.txt" -n 16 -b 1e10 --verify --straight
$GEN inception 2 4 3 >"$WORK/inc_small.txt"
run "verify: inception 2x4x3, 8" "$WORK/inc_small.txt" -n 8 -b 1e10 --verify --time-limit 10
run "verify: vgg16 h200, 16" models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 16 -b 1e10 --verify
# several levels (the positional program, planner/certificate/ilp.c: the default model without
# a memory limit)
$GEN chain 100 >"$WORK/chain100.txt"
run "verify: chain 100, 4x4" "$WORK/chain100.txt" -n 4 4 -b 1e11 1e10 --verify
run "verify: chain 100, 8x8" "$WORK/chain100.txt" -n 8 8 -b 1e11 1e10 --verify
run "verify: gnmt 2x48 cross/2, 4x4" "$WORK/gnmt48.txt" -n 4 4 -b 1e11 1e10 --verify
run "verify: vgg16 h200, 4x4" models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 4 -b 1e11 1.25e9 --verify
echo
echo "issue 3 targets (CPU time of the whole pdplan run, user + sys; wall time where marked):"
for t in "${TARGETS[@]}"; do echo "  $t"; done
[ "$HAVE_TIME" = 1 ] || echo "(peak memory needs GNU time at /usr/bin/time; not installed here)"
