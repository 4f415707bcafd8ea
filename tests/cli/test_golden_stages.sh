#!/usr/bin/env bash
# test_golden_stages.sh: the generated sources, byte for byte, against tests/golden/stages/<case>/
# (fmnist_cnn on 2 stages, ResNet-50 on 4 stages and on 2 stages of which the first is
# replicated 3 times, fmnist_cnn for CUDA, fmnist_cnn with selective recomputation). pdplan runs in a scratch folder that links models/,
# so that the banner's command line (-o <case>) is the same everywhere; the one machine-dependent
# text, this checkout's path (the Makefile's PDRT_ROOT), is masked as @ROOT@. Then what every
# golden stage must be: lines within 100 columns, no bare buffer offset (acts + 4816896: offsets
# are named), no (float) casts of double text, and the CPU ones compile with -Wall -Wextra -Werror.
# Arguments that give a ResNet-50 plan with a replicated stage: -n 4 -b 1e10 (replicas 3, 1);
# also -n 8 -b 1e10 (4, 3, 1) and -n 8 -b 1e11 (5, 3); -n 4 -b 1e11 is one stage of 4 replicas.
# Regenerate them after an intended change with: UPDATE_GOLDEN=1 bash tests/cli/test_golden_stages.sh
# (or UPDATE_GOLDEN=resnet50 to regenerate only the cases whose name contains "resnet50")
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
GOLDEN=tests/golden/stages

# name | files compared | pdplan arguments (from the repository root)
CASES=(
    "fmnist_cnn.n2_straight|stage_0.c stage_1.c single.c schedule launch.conf Makefile|models/fmnist_cnn.yaml -n 2 --straight"
    "resnet50.h200.n4_straight|stage_0.c stage_1.c stage_2.c stage_3.c launch.conf|models/resnet50.yaml --device h200 -n 4 -b 1e11 --straight"
    "resnet50.h200.n4_b1e10|stage_0.c stage_1.c launch.conf|models/resnet50.yaml --device h200 -n 4 -b 1e10"
    "fmnist_cnn.n2_straight.cuda|stage_0.cu stage_1.cu launch.conf Makefile|models/fmnist_cnn.yaml -n 2 --straight --backend cuda"
    "fmnist_cnn.n2_straight.selective|stage_0.c stage_1.c|models/fmnist_cnn.yaml -n 2 --straight --recompute selective"
)

mask() { # file
    sed -e "s|$ROOT|@ROOT@|g" "$1"
}
RUN=$TMP/run
mkdir -p "$RUN" && ln -s "$ROOT/models" "$RUN/models"

upd=${UPDATE_GOLDEN:-0}
for case_ in "${CASES[@]}"; do
    name=${case_%%|*} rest=${case_#*|}
    files=${rest%%|*} args=${rest#*|}
    out="$RUN/$name"
    # shellcheck disable=SC2086
    cd "$RUN" || exit 1
    expect_status 0 "golden_stages $name" "$PDPLAN" $args -q -o "$name"
    st=$?
    cd "$ROOT" || exit 1
    [ $st = 0 ] || continue
    if [ "$upd" = 1 ] || { [ "$upd" != 0 ] && [[ "$name" == *"$upd"* ]]; }; then
        rm -rf "${GOLDEN:?}/$name" && mkdir -p "$GOLDEN/$name"
        for f in $files; do mask "$out/$f" >"$GOLDEN/$name/$f"; done
        pass "golden_stages $name (updated)"
        continue
    fi
    bad=""
    for f in $files; do
        if [ ! -f "$GOLDEN/$name/$f" ]; then
            bad="$bad $f(no golden file: run UPDATE_GOLDEN=1 bash $0)"
        elif ! cmp -s <(mask "$out/$f") "$GOLDEN/$name/$f"; then
            bad="$bad $f"
            diff "$GOLDEN/$name/$f" <(mask "$out/$f") | head -20 | sed "s/^/  $f | /"
        fi
    done
    [ -z "$bad" ] && pass "golden_stages $name" || fail "golden_stages $name" "differs:$bad"
done

# what a person would have written
stages=$(ls "$GOLDEN"/*/stage_*.c "$GOLDEN"/*/stage_*.cu 2>/dev/null)
if [ -z "$stages" ]; then
    fail golden_stages_style "no golden stages"
else
    # shellcheck disable=SC2086
    long=$(awk 'length($0) > 100 { print FILENAME ":" FNR ": " length($0) " columns" }' $stages | head -5)
    # shellcheck disable=SC2086
    bare=$(grep -nE '\b(in|out|acts|params|buffers|din|dout|dacts|dparams) \+ [0-9]' $stages | head -5)
    # shellcheck disable=SC2086
    casts=$(grep -n '(float)[0-9]' $stages | head -5)
    if [ -z "$long$bare$casts" ]; then
        pass golden_stages_style
    else
        fail golden_stages_style "$long $bare $casts"
    fi
fi
mpi_c=$(pkg-config --cflags ompi-c 2>/dev/null || echo -I/usr/lib/x86_64-linux-gnu/openmpi/include)
ok=1
for f in "$GOLDEN"/*/stage_*.c; do
    # shellcheck disable=SC2086
    cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsyntax-only -I"$ROOT" -I"$ROOT/runtime" -I"$ROOT/runtime/cpu" $mpi_c "$f" \
        >"$TMP/cc.log" 2>&1 || { ok=0; echo "$f:"; head -5 "$TMP/cc.log"; }
done
[ $ok = 1 ] && pass golden_stages_compile_werror || fail golden_stages_compile_werror
finish
