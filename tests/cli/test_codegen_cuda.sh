#!/usr/bin/env bash
# test_codegen_cuda.sh: pdplan --backend cuda. The generated folder (stage_<k>.cu calling
# ops_cuda.h, an nvcc Makefile for sm_90 and a generic PTX target, launch.conf) is deterministic;
# with nvcc present, fmnist_cnn, resnet50 and gpt2_124m (-n 8, tied head) stages compile and link (against libpdrt_cuda.a,
# cuBLASLt, cuDNN, NCCL, MPI; never libyaml or GLPK); without a GPU a stage fails with a clear
# message and no crash. Without nvcc the build checks SKIP.
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
r=$TMP/r50
if expect_status 0 cuda_codegen_resnet50 "$PDPLAN" models/resnet50.yaml -n 2 --straight -q --backend cuda -o "$r"; then
    build cuda_build_resnet50 "$r"
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
