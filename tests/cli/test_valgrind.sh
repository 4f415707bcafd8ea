#!/usr/bin/env bash
# test_valgrind.sh: the plain (unsanitized) bin/pdplan under valgrind memcheck on every bundled
# model, with a profile and a cluster file, on a PipeDream graph.txt, and on bad inputs (the
# diagnostic paths): no invalid read or write, no use of uninitialised values, no definite or
# indirect leak; and a short --single/--emulate training run of the generated code under memcheck.
# Valgrind reports turn into exit status 99 (pdplan's own statuses are 0-3).
# SKIP when valgrind is not installed.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
PLAIN=$TMP/pdplan # a copy, so that a concurrent rebuild of bin/pdplan cannot race the test

if ! command -v valgrind >/dev/null 2>&1; then
    skip valgrind "valgrind is not installed"
    finish
    exit 0
fi
if [ ! -x "$ROOT/bin/pdplan" ] || ! cp "$ROOT/bin/pdplan" "$PLAIN"; then
    skip valgrind "bin/pdplan is not built"
    finish
    exit 0
fi

# vg NAME WANT_STATUS ARGS...: pdplan ARGS under memcheck exits WANT_STATUS with a clean report.
vg() {
    local name=$1 want=$2; shift 2
    rm -rf "$TMP/out"
    OUTPUT=$(timeout -k 5 120 valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        "$PLAIN" "$@" -q -o "$TMP/out" 2>&1)
    local rc=$?
    if [ "$rc" -eq "$want" ]; then
        pass "valgrind_$name"
    else
        fail "valgrind_$name" "exit status $rc, wanted $want (99: memcheck errors)"
        printf '%s\n' "$OUTPUT" | grep -v '^$' | head -30 | sed 's/^/  | /'
    fi
}

for m in models/*.yaml; do
    # a model written ahead of its ops (gpt_char before layernorm and attention) is skipped
    if "$PDPLAN" "$m" -n 4 --no-codegen -q -o "$TMP/ops_check" 2>&1 | grep -q "unknown op"; then
        skip "valgrind_$(basename "$m" .yaml)" "an op it uses is not in this tree yet"
        continue
    fi
    vg "$(basename "$m" .yaml)" 0 "$m" -n 4 --no-codegen
done
# code generation too, where the model has runtime kernels
vg fmnist_cnn_codegen 0 models/fmnist_cnn.yaml -n 2 --straight
vg vgg16_profile_cluster 0 models/vgg16.yaml -p profiles/vgg16.h200.yaml -c clusters/cluster-a.yaml \
    --no-codegen
vg graphtxt 0 tests/data/graphtxt_cli/branchy.txt -n 4 -b 1e9
# the error paths: diagnostics, exit status 2, nothing leaked
vg bad_several_errors 2 tests/data/bad/several_errors.yaml
vg bad_alias_bomb 2 tests/data/bad/alias_bomb.yaml
vg bad_profile 2 models/fmnist_cnn.yaml -p tests/data/bad/profile_missing_layer.yaml
vg bad_cluster 2 models/fmnist_cnn.yaml -c tests/data/bad/cluster_zero_workers.yaml
vg bad_graph_cycle 2 tests/data/bad/graph_cycle.txt -n 4
# a short training run: every stage in one process (--single, and --emulate's 1F1B replay), on a
# small model with every op kind that has parameters or state; the local mode uses no MPI, so no
# suppression file is needed
cat >"$TMP/vg_tiny.yaml" <<'EOF'
pd: 1
name: vg_tiny
input: [2, 8, 8]
classes: 5
batch: 8
dataset: synthetic
loss: softmax_cross_entropy
optimizer: {kind: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.0001}
epochs: 1
layers:
  - {name: conv, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {name: bn, op: batchnorm2d}
  - {name: relu1, op: relu}
  - {name: pool, op: maxpool2d, kernel: 2}
  - {name: a1, op: avgpool2d, kernel: 1}
  - {name: flat, op: flatten}
  - {name: fc1, op: linear, out_features: 16}
  - {name: drop, op: dropout, p: 0.25}
  - {name: fc2, op: linear, out_features: 5}
EOF
if "$PLAIN" "$TMP/vg_tiny.yaml" -n 2 --straight -q -o "$TMP/vg_gen" >"$TMP/vg_gen.log" 2>&1 &&
    make -s -C "$TMP/vg_gen" >>"$TMP/vg_gen.log" 2>&1; then
    for mode in single emulate; do
        OUTPUT=$(cd "$TMP/vg_gen" && OPENBLAS_NUM_THREADS=1 timeout -k 5 120 valgrind -q \
            --num-callers=30 --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
            ./pd_single --$mode --steps 4 --data synthetic --synthetic-n 64 \
            --run-dir "$TMP/vg_run_$mode" 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ]; then pass "valgrind_training_$mode"
        else
            fail "valgrind_training_$mode" "exit status $rc (99: memcheck errors)"
            printf '%s\n' "$OUTPUT" | grep -v '^$' | head -30 | sed 's/^/  | /'
        fi
    done
else
    fail valgrind_training "could not generate or build the small model"
    sed 's/^/  | /' "$TMP/vg_gen.log" | head -20
fi
finish
