#!/usr/bin/env bash
# test_op_models.sh: an op added through its descriptor alone works end to end. For each model
# below (tests/data/models/tiny_gelu.yaml: gelu, docs/architecture.md ("Ops")'s worked example;
# tiny_transformer.yaml: layernorm, attention, and linear, gelu, add, dropout, concat on (T, C)):
# pdplan plans it on 2 stages and generates stages that call the op's kernels; they build and
# train; under flush the pipeline's weights equal --single's bit for bit and differ from those
# after one step; bin/pdprof profiles every layer; with nvcc, the CUDA stages compile and link.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
PDPROF=${PDPROF:-$ROOT/bin/pdprof}
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }
export PATH="$PATH:/usr/local/cuda/bin"

# model | kernel the stages must call
for case_ in "tiny_gelu|pdrt_gelu_backward" "tiny_transformer|pdrt_attention_backward"; do
    name=${case_%%|*} kernel=${case_#*|}
    model=tests/data/models/$name.yaml g=$TMP/$name
    expect_status 0 "${name}_plans" "$PDPLAN" "$model" -n 2 --straight -q -o "$g" || continue
    grep -q "$kernel(" "$g"/stage_*.c && pass "${name}_calls_its_kernel" || fail "${name}_calls_its_kernel"
    expect_status 0 "${name}_builds" make -s -C "$g" || continue
    common=(--data synthetic --synthetic-n 256 --seed 5 --no-eval --schedule flush --microbatches 4 --steps 6)
    expect_status 0 "${name}_pipeline_trains" "$LAUNCH" "$g" "${common[@]}" --save "$TMP/p_$name" &&
    expect_status 0 "${name}_single_trains" "$LAUNCH" "$g" --single "${common[@]}" --save "$TMP/s_$name" &&
    expect_status 0 "${name}_one_step" "$LAUNCH" "$g" --single "${common[@]}" --steps 1 --save "$TMP/i_$name" && {
        same_dirs "$TMP/p_$name" "$TMP/s_$name" && pass "${name}_flush_equals_single_bitwise" ||
            fail "${name}_flush_equals_single_bitwise"
        ! same_dirs "$TMP/s_$name" "$TMP/i_$name" && pass "${name}_weights_moved" || fail "${name}_weights_moved"
    }
    if [ -x "$PDPROF" ]; then
        if expect_status 0 "${name}_pdprof" "$PDPROF" "$model" --batch 4 --rounds 1 --repeats 1 -q -o "$TMP/$name.prof.yaml"; then
            want=$(grep -c '{name:' "$model") got=$(grep -c '^  - {name:' "$TMP/$name.prof.yaml")
            [ "$want" = "$got" ] && pass "${name}_pdprof_every_layer" || fail "${name}_pdprof_every_layer" "$got of $want layers"
        fi
    else
        skip "${name}_pdprof" "$PDPROF is not built"
    fi
    if command -v nvcc >/dev/null 2>&1; then
        expect_status 0 "${name}_cuda_codegen" "$PDPLAN" "$model" -n 2 --straight -q --backend cuda -o "$g.cu" &&
        expect_status 0 "${name}_cuda_builds" make -s -C "$g.cu" PDRT_ROOT="$ROOT" &&
            pass "${name}_cuda_builds"
    else
        skip "${name}_cuda_builds" "nvcc not found"
    fi
done
finish
