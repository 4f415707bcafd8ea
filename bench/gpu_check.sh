#!/usr/bin/env bash
# gpu_check.sh: the one script for the GPU machine (docs/cuda.md). Builds the CUDA library and
# its tools there (no libyaml, GLPK or MPI needed), checks every GPU op forward and backward
# against the CPU ops (build/cuda/test_ops_cuda), then times full training steps of VGG-16
# (batch 64), AlexNet (256) and ResNet-50 (128) in fp32 without TF32 and in bf16, and prints a
# table against the PyTorch eager anchors measured on one H200 (../shared/anchors/h200).
# Usage: bench/gpu_check.sh [OUTDIR]   (OUTDIR receives the logs; default build/gpu_check)
# Exit status: 0 when the build and every op check pass (timings never fail the script).
set -u
cd "$(dirname "$0")/.."
out=${1:-build/gpu_check}
mkdir -p "$out"
status=0
say() { echo "== $*"; }

say "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
date -u +%Y-%m-%dT%H:%MZ

say "build (make cuda)"
export PATH="$PATH:/usr/local/cuda/bin"
blas=()
# the CPU reference needs <cblas.h>; where OpenBLAS's header is missing, declare cblas_sgemm
if ! echo '#include <cblas.h>' | gcc $(pkg-config --cflags openblas 2>/dev/null) -E -x c - \
        >/dev/null 2>&1; then
    mkdir -p build/cblas_shim
    cat > build/cblas_shim/cblas.h <<'H'
/* cblas.h shim for machines with libopenblas but no header: only what runtime/ops_*.c use */
#ifndef PD_CBLAS_SHIM_H
#define PD_CBLAS_SHIM_H
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };
void cblas_sgemm(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, int, int, int,
                 float, const float *, int, const float *, int, float, float *, int);
#endif
H
    blas=(BLAS_CFLAGS=-Ibuild/cblas_shim "BLAS_LIBS=-lopenblas")
    echo "(cblas.h not found: using build/cblas_shim)"
fi
t0=$(date +%s)
if ! make -j8 cuda "${blas[@]}" >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log"
    echo "FAIL build"
    exit 1
fi
echo "built in $(( $(date +%s) - t0 )) s"

say "op checks (GPU vs CPU, fresh random inputs)"
export OPENBLAS_NUM_THREADS=4
timeout -k 5 300 build/cuda/test_ops_cuda 2>&1 | tee "$out/ops.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
grep -q '^SKIP' "$out/ops.log" && { echo "FAIL op checks skipped on the GPU machine"; status=1; }

say "2-stage fmnist_cnn pipeline on one GPU"
echo "SKIP pipeline: pdplan --backend cuda (stage_<k>.cu) is not generated yet (docs/cuda.md)"

say "training steps (median of 10 after 3 warm-up steps)"
export NVIDIA_TF32_OVERRIDE=0 # fp32 means fp32: no TF32 anywhere
: > "$out/steps.log"
for m in vgg16 alexnet resnet50; do
    for p in fp32 bf16; do
        timeout -k 5 150 build/cuda/gpu_step "$m" "$p" >>"$out/steps.log" 2>"$out/step_${m}_$p.err" \
            || echo "step $m $p FAILED (see $out/step_${m}_$p.err)" | tee -a "$out/steps.log"
        tail -n 3 "$out/step_${m}_$p.err" | grep -v '^#' || true
    done
done
cat "$out/steps.log"

say "table against PyTorch eager on one H200 (anchors/h200, 2026-11-28)"
awk '
BEGIN {
    a["vgg16 fp32"] = 98.5;  a["vgg16 bf16"] = 30.5
    a["alexnet fp32"] = 22.7; a["alexnet bf16"] = 9.3
    a["resnet50 fp32"] = 128.0; a["resnet50 bf16"] = 56.4
    printf "| model | precision | batch | ours (ms) | PyTorch (ms) | ours / PyTorch |\n"
    printf "|---|---|---|---|---|---|\n"
}
$1 == "step" && $4 == "batch" {
    k = $2 " " $3; ms = $9
    printf "| %s | %s | %s | %.1f | %.1f | %.2f%s |\n", $2, $3, $5, ms, a[k], ms / a[k], \
        ms <= a[k] ? "" : " (slower)"
}
$1 == "step" && $4 == "FAILED" { printf "| %s | %s | - | failed | %.1f | - |\n", $2, $3, a[$2 " " $3] }
' "$out/steps.log" | tee "$out/table.md"
echo
[ "$status" -eq 0 ] && echo "gpu_check: op checks passed" || echo "gpu_check: FAILED"
exit "$status"
