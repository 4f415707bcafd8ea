#!/usr/bin/env bash
# test_codegen_cuda.sh: pdplan --backend cuda. The generated folder (stage_<k>.cu calling
# ops_cuda.h, an nvcc Makefile for sm_90 and a generic PTX target, launch.conf) is deterministic;
# with nvcc present, fmnist_cnn, resnet50 and gpt2_124m (-n 8, tied head) stages compile and link (against libpdrt_cuda.a,
# cuBLASLt, cuDNN, NCCL, MPI; never libyaml or GLPK); without a GPU a stage fails with a clear
# message and no crash; zb-h1, zb-h2, 2bw and --recompute plan for CUDA, and every stage carries
# the split backward of the zero-bubble schedules. Without nvcc the build checks SKIP.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
export PATH="$PATH:/usr/local/cuda/bin"

g=$TMP/fm
if expect_status 0 cuda_codegen_runs "$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q --backend cuda -o "$g"; then
    ok=1
    for f in stage_0.cu stage_1.cu schedule Makefile launch.conf plan.yaml; do
        [ -s "$g/$f" ] || { ok=0; fail cuda_codegen_files "missing $f"; }
    done
    [ -e "$g/single.c" ] && { ok=0; fail cuda_codegen_files "single.c written for cuda"; }
    [ $ok = 1 ] && pass cuda_codegen_files
    # device calls only: no CPU op in a CUDA stage, the fused linear+ReLU where it applies
    if grep -q 'pdrt_conv2d_forward_cuda(ctx' "$g/stage_0.cu" && grep -q 'pdrt_cuda_main' "$g/stage_0.cu" &&
        ! grep -qE '(^|[^_a-z])(conv2d|linear|relu)_(forward|backward)\(' "$g"/stage_*.cu &&
        grep -q 'pdrt_linear_relu_forward_cuda' "$g"/stage_*.cu && grep -q 'pdrt_linear_relu_backward_cuda' "$g"/stage_*.cu; then
        pass cuda_stage_calls_device_ops
    else
        fail cuda_stage_calls_device_ops
    fi
    if grep -q 'arch=compute_90,code=sm_90' "$g/Makefile" && grep -q 'code=compute_75' "$g/Makefile" &&
        grep -q -- '-lnccl' "$g/Makefile" && ! grep -qE -- '-l(yaml|glpk)' "$g/Makefile" &&
        grep -q '^backend cuda' "$g/launch.conf"; then
        pass cuda_makefile
    else
        fail cuda_makefile
    fi
    # the same plan and layout as the CPU backend: same sizes in both stages
    "$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q -o "$TMP/fmcpu" >/dev/null 2>&1
    if diff <(grep -h '^#define S' "$TMP/fmcpu"/stage_*.c) <(grep -h '^#define S' "$g"/stage_*.cu) >/dev/null &&
        cmp -s "$TMP/fmcpu/schedule" "$g/schedule"; then
        pass cuda_same_layout_as_cpu
    else
        fail cuda_same_layout_as_cpu
    fi
    "$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q --backend cuda -o "$TMP/fm2" >/dev/null 2>&1
    same=1
    for f in stage_0.cu stage_1.cu Makefile launch.conf; do # the banner names the output folder
        cmp -s <(sed "s|$g|OUT|" "$g/$f") <(sed "s|$TMP/fm2|OUT|" "$TMP/fm2/$f") || same=0
    done
    [ $same = 1 ] && pass cuda_codegen_deterministic || fail cuda_codegen_deterministic
fi

# zb-h1, zb-h2, 2bw and recomputation on CUDA: the plans generate, every stage carries the
# split backward (backward_input without a weight gradient, backward_weight without an input
# gradient, neither for an op that does not split: none here), and the stages differ from
# 1f1b's only in the descriptor's schedule fields (so the one build below covers their code)
body() { # file function: the function's body
    awk -v f="$2" '$0 ~ "^static void " f "\\(" { on = 1; next } on && /^}/ { on = 0 } on' "$1"
}
split_ok() { # stage files...: every backward_input writes no weight gradient, every
    local f s bad=0 # backward_weight no input gradient, and each has calls
    for f in "$@"; do
        s=$(grep -o 'S[0-9]*_backward_input' "$f" | head -1); s=${s%_backward_input}
        body "$f" "${s}_backward_input" | grep -q 'dparams +' && { bad=1; echo "${f##*/}: weights in B"; }
        body "$f" "${s}_backward_weight" | grep -qE 'din \+' && { bad=1; echo "${f##*/}: din in W"; }
        body "$f" "${s}_backward_weight" | grep -E '_cuda\(ctx, ' | grep -vqE '\(ctx, NULL,|embedding_backward' &&
            { bad=1; echo "${f##*/}: a W call with an input gradient"; }
        [ "$(body "$f" "${s}_backward_input" | grep -c '_cuda(ctx')" -gt 0 ] || { bad=1; echo "${f##*/}: empty B"; }
    done
    return $bad
}
if [ -d "$g" ]; then
    split_ok "$g"/stage_*.cu && pass cuda_split_backward_parts || fail cuda_split_backward_parts
    same=1
    for how in "zb-h1|--schedule zb-h1" "zb-h2|--schedule zb-h2" "2bw|--schedule 2bw --microbatches 4" "rc|--recompute"; do
        name=${how%%|*}
        # shellcheck disable=SC2086
        "$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q --backend cuda ${how#*|} -o "$TMP/fm_$name" >"$TMP/plan.log" 2>&1 ||
            { same=0; fail "cuda_codegen_$name" "$(tail -3 "$TMP/plan.log")"; continue; }
        for f in stage_0.cu stage_1.cu; do
            diff <(grep -vE '^ \*|^/\*|b->(schedule|weight_versions|predicted|microbatches|plan_hash|recompute)' "$g/$f") \
                 <(grep -vE '^ \*|^/\*|b->(schedule|weight_versions|predicted|microbatches|plan_hash|recompute)' "$TMP/fm_$name/$f") >/dev/null ||
                { same=0; echo "fm_$name/$f differs from 1f1b's beyond the descriptor"; }
        done
    done
    grep -q 'b->schedule = "zb-h2";' "$TMP/fm_zb-h2/stage_0.cu" && grep -q 'b->schedule = "2bw";' "$TMP/fm_2bw/stage_1.cu" &&
        [ "$(grep -c 'b->recompute = 1;' "$TMP"/fm_rc/stage_*.cu | awk -F: '{ s += $2 } END { print s }')" = 2 ] || same=0
    [ $same = 1 ] && pass cuda_codegen_schedules_and_recompute || fail cuda_codegen_schedules_and_recompute
fi

# --precision bf16 at plan time: the stages' default; refused for the CPU backend
if "$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q --backend cuda --precision bf16 -o "$TMP/bf" >/dev/null 2>&1 &&
    grep -q 'c.precision = PD_CUDA_BF16' "$TMP/bf/stage_0.cu" && grep -q 'c.precision = PD_CUDA_FP32' "$g/stage_0.cu"; then
    pass cuda_precision_bf16
else
    fail cuda_precision_bf16
fi
expect_status 2 cuda_precision_cpu_refused "$PDPLAN" models/fmnist_cnn.yaml -q --precision bf16 -o "$TMP/bfc" &&
    pass cuda_precision_cpu_refused

NVCC=$(command -v nvcc)
if [ -z "$NVCC" ]; then
    skip cuda_build_fmnist "nvcc not found"
    skip cuda_build_resnet50 "nvcc not found"
    skip cuda_build_gpt2 "nvcc not found"
    skip cuda_stage_without_gpu "nvcc not found"
    skip cuda_session_binaries_link "nvcc not found"
    skip cuda_build_interleaved "nvcc not found"
    finish
    exit $?
fi

build() { # name dir
    if make -s -C "$2" PDRT_ROOT="$ROOT" >"$TMP/$1.log" 2>&1; then
        local bad=0
        for s in "$2"/stage_*.cu; do
            b=${s%.cu}
            [ -x "$b" ] || { bad=1; echo "missing ${b##*/}"; }
            readelf -d "$b" 2>/dev/null | grep -qE 'libyaml|libglpk' && { bad=1; echo "${b##*/} links libyaml/GLPK"; }
            readelf -d "$b" 2>/dev/null | grep -q 'libnccl' || { bad=1; echo "${b##*/} does not link NCCL"; }
        done
        [ $bad = 0 ] && pass "$1" || fail "$1"
    else
        fail "$1" "make failed"
        tail -n 20 "$TMP/$1.log" | sed 's/^/  | /'
    fi
}
[ -d "$g" ] && build cuda_build_fmnist "$g"
# the GPU session's own binaries (bench/gpu_check.sh: make cuda) link here too
if make -s -C "$ROOT" build/cuda/gpu_step build/cuda/test_ops_cuda >"$TMP/gpu_bins.log" 2>&1; then
    pass cuda_session_binaries_link
else
    fail cuda_session_binaries_link "$(tail -n 5 "$TMP/gpu_bins.log")"
fi
r=$TMP/r50
if expect_status 0 cuda_codegen_resnet50 "$PDPLAN" models/resnet50.yaml -n 2 --straight -q --backend cuda -o "$r"; then
    build cuda_build_resnet50 "$r"
    split_ok "$r"/stage_*.cu && pass cuda_split_backward_resnet50 || fail cuda_split_backward_resnet50
fi

# GPT-2 124M with its tied head on 8 GPUs: plans, lists the tie on the two stages holding wte and
# head, and every stage compiles (each stage_<k>.cu is host code calling libpdrt_cuda: seconds)
q=$TMP/gpt2
if expect_status 0 cuda_codegen_gpt2 "$PDPLAN" models/gpt2_124m.yaml -n 8 -q --backend cuda -o "$q"; then
    sum=$(awk '/^    params:/ { s += $2 } END { print s }' "$q/plan.yaml")
    [ "$sum" = 124439808 ] && pass cuda_gpt2_params || fail cuda_gpt2_params "stages sum to $sum"
    n=$(grep -l 'b->ties = ties;' "$q"/stage_*.cu | wc -l)
    [ "$n" -ge 1 ] && pass cuda_gpt2_ties_listed || fail cuda_gpt2_ties_listed "no stage lists the tie"
    build cuda_build_gpt2 "$q"
    split_ok "$q"/stage_*.cu && pass cuda_split_backward_gpt2 || fail cuda_split_backward_gpt2
fi

# interleaved (2 ranks x 2 chunks): one binary per rank, linking its chunks' stages compiled
# without their main (chunk_K.o: S<K>_describe, no main), through pdrt_cuda_main_chunks; no
# stage_K binaries; and without a GPU the rank binary says so
ig=$TMP/inter
if expect_status 0 cuda_codegen_interleaved "$PDPLAN" models/fmnist_cnn.yaml -n 2 -q --schedule \
        interleaved --chunks 2 --backend cuda -o "$ig"; then
    grep -q 'pdrt_cuda_main_chunks(argc, argv, chunks, 2)' "$ig/rank_1.cu" &&
        grep -q 'S1_describe(), S3_describe()' "$ig/rank_1.cu" &&
        grep -q '^stage 1 binary rank_1 replicas 1 ranks 1' "$ig/launch.conf" &&
        grep -q '^backend cuda' "$ig/launch.conf" && pass cuda_interleaved_sources ||
        fail cuda_interleaved_sources "rank_1.cu or launch.conf"
    if make -s -C "$ig" PDRT_ROOT="$ROOT" >"$TMP/inter.log" 2>&1 && [ -x "$ig/rank_0" ] &&
            [ -x "$ig/rank_1" ] && ! ls "$ig"/stage_? >/dev/null 2>&1 &&
            readelf -d "$ig/rank_0" | grep -q libnccl &&
            nm "$ig/chunk_2.o" | grep -q ' T .*S2_describe' && ! nm "$ig/chunk_2.o" | grep -q ' T main$'; then
        pass cuda_build_interleaved
    else
        fail cuda_build_interleaved "$(tail -n 5 "$TMP/inter.log")"
    fi
    if [ -x "$ig/rank_0" ] && ! nvidia-smi -L >/dev/null 2>&1; then
        OUTPUT=$(timeout -k 5 60 "$ig/rank_0" --steps 1 --data synthetic 2>&1); rc=$?
        [ "$rc" -eq 1 ] && printf '%s' "$OUTPUT" | grep -q 'no usable CUDA GPU' &&
            pass cuda_interleaved_without_gpu || fail cuda_interleaved_without_gpu "exit status $rc"
    fi
fi

# no GPU: a clear message and exit status 1, not a crash (with a GPU this check is moot)
if [ -x "$g/stage_0" ]; then
    if nvidia-smi -L >/dev/null 2>&1; then
        skip cuda_stage_without_gpu "a GPU is present"
    else
        OUTPUT=$(timeout -k 5 60 "$g/stage_0" --steps 1 --data synthetic 2>&1); rc=$?
        if [ "$rc" -eq 1 ] && printf '%s' "$OUTPUT" | grep -q 'no usable CUDA GPU'; then
            pass cuda_stage_without_gpu
        else
            fail cuda_stage_without_gpu "exit status $rc: $(printf '%s' "$OUTPUT" | head -3)"
        fi
        OUTPUT=$("$g/stage_0" --precision fp16 2>&1); rc=$?
        [ "$rc" -eq 2 ] && printf '%s' "$OUTPUT" | grep -q 'fp32 or bf16' && pass cuda_stage_bad_precision ||
            fail cuda_stage_bad_precision "exit status $rc"
    fi
fi
finish
