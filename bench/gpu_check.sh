#!/usr/bin/env bash
# gpu_check.sh: the one script for the GPU machine (docs/cuda.md). Builds the CUDA library and
# its tools there (no libyaml, GLPK or MPI needed), checks every GPU op forward and backward
# against the CPU ops (build/cuda/test_ops_cuda), runs a 2-stage fmnist_cnn pipeline on one GPU
# (CUDA IPC between the stages) against the CPU pipeline, then zb-h1, zb-h2, 2bw and
# recomputation on a 2-stage tiny model against the CPU's, the interleaved schedule (fmnist_cnn,
# 2 ranks x 2 chunks) against the CPU's --single, then times full training steps of VGG-16
# (batch 64), AlexNet (256) and ResNet-50 (128) in fp32 without TF32 and in bf16, and prints a
# table against the PyTorch eager anchors measured on one H200 (../shared/anchors/h200).
# Usage: bench/gpu_check.sh [OUTDIR]   (OUTDIR receives the logs; default build/gpu_check)
# Exit status: 0 when the build and every op check pass (timings never fail the script).
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = --generate ]; then # here, where pdplan runs: the sources step 3 carries there
    rm -rf bench/gpu_pipeline && mkdir -p bench/gpu_pipeline
    bin/pdplan models/fmnist_cnn.yaml -n 2 --straight -q -o bench/gpu_pipeline/cpu &&
        bin/pdplan models/fmnist_cnn.yaml -n 2 --straight -q --backend cuda -o bench/gpu_pipeline/cuda &&
        bin/pdplan tests/data/models/tiny.yaml -n 2 --straight -q -o bench/gpu_pipeline/tiny_cpu &&
        bin/pdplan tests/data/models/tiny.yaml -n 2 --straight -q --backend cuda -o bench/gpu_pipeline/tiny_cuda &&
        bin/pdplan models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 2 -q -o bench/gpu_pipeline/inter_cpu &&
        bin/pdplan models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 2 -q --backend cuda \
            -o bench/gpu_pipeline/inter_cuda
    exit $?
fi
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
/* cblas.h shim for machines with libopenblas but no header: only what runtime/cpu/ops_*.c use */
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

say "2-stage fmnist_cnn pipeline on one GPU (CUDA IPC) against the CPU pipeline"
# The stages come from bench/gpu_pipeline/{cpu,cuda} (generated here by `bench/gpu_check.sh
# --generate`: the GPU machine has no libyaml or GLPK for pdplan), or fresh where pdplan runs.
# Both train 40 minibatches of synthetic data with seed 7 under 1F1B; the loss every 5 steps and
# the final weights must agree within 2e-2 (normwise, relative): cuDNN/cuBLASLt against im2col
# and OpenBLAS, accumulated over 40 SGD steps with momentum.
pipe_check() {
    local p="$out/pipe" ok=1
    rm -rf "$p" && mkdir -p "$p"
    if [ -x bin/pdplan ] && bin/pdplan models/fmnist_cnn.yaml -n 2 --straight -q -o "$p/cpu" >/dev/null 2>&1 &&
        bin/pdplan models/fmnist_cnn.yaml -n 2 --straight -q --backend cuda -o "$p/cuda" >/dev/null 2>&1; then
        echo "(generated with bin/pdplan)"
    else
        cp -r bench/gpu_pipeline/cpu bench/gpu_pipeline/cuda "$p/" || { echo "FAIL pipeline: no sources"; return 1; }
    fi
    make -s build/libpdrt.a "${blas[@]}" >"$p/build.log" 2>&1 &&
        make -s -C "$p/cpu" PDRT_ROOT="$PWD" "${blas[@]}" stages >>"$p/build.log" 2>&1 &&
        make -s -C "$p/cuda" PDRT_ROOT="$PWD" "${blas[@]}" >>"$p/build.log" 2>&1 ||
        { tail -n 30 "$p/build.log"; echo "FAIL pipeline build"; return 1; }
    local mpi=(mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1)
    [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    local args=(--steps 40 --data synthetic --seed 7 --no-eval --log-every 5 --no-trace)
    for b in cpu cuda; do
        timeout -k 5 120 "${mpi[@]}" -np 1 "$p/$b/stage_0" "${args[@]}" --save "$p/w_$b" --run-dir "$p/run_$b" : \
            -np 1 "$p/$b/stage_1" "${args[@]}" --save "$p/w_$b" --run-dir "$p/run_$b" >"$p/$b.log" 2>&1 ||
            { tail -n 20 "$p/$b.log"; echo "FAIL pipeline run ($b)"; return 1; }
    done
    grep -E 'link to rank|memory plan|precision' "$p/cuda.log"
    grep -q 'link to rank 1: cuda-ipc' "$p/cuda.log" || { echo "FAIL pipeline: stage 0 did not use CUDA IPC"; ok=0; }
    paste <(grep -o 'loss [0-9.eE+-]*' "$p/cpu.log" | awk '{print $2}') \
          <(grep -o 'loss [0-9.eE+-]*' "$p/cuda.log" | awk '{print $2}') > "$p/loss.txt"
    echo "loss every 5 steps (cpu, cuda):"; cat "$p/loss.txt"
    awk 'NF != 2 { bad = 1 } NF == 2 { d = $1 - $2; if (d < 0) d = -d; if (d > 2e-2 * ($1 > 0 ? $1 : -$1) + 1e-6) bad = 1 }
         END { exit bad || NR < 8 }' "$p/loss.txt" || { echo "FAIL pipeline: loss trajectories differ"; ok=0; }
    local n=0
    for f in "$p"/w_cpu/*.f32; do
        g="$p/w_cuda/${f##*/}"
        [ -f "$g" ] || { echo "FAIL pipeline: ${f##*/} missing from the CUDA run"; ok=0; continue; }
        e=$(paste <(od -An -v -f -w4 "$f") <(od -An -v -f -w4 "$g") |
            awk '{ d = $1 - $2; s += d * d; r += $1 * $1 } END { printf "%.3g", sqrt(s / (r > 0 ? r : 1)) }')
        n=$((n + 1))
        awk -v e="$e" 'BEGIN { exit !(e <= 2e-2) }' || { echo "FAIL pipeline: ${f##*/} differs by $e"; ok=0; }
    done
    echo "weights compared: $n tensors"
    [ "$n" -gt 0 ] && [ $ok = 1 ] && echo "PASS pipeline: 2-stage fmnist_cnn on one GPU matches the CPU pipeline"
    [ "$n" -gt 0 ] && [ $ok = 1 ]
}
pipe_check || status=1

say "schedules on the GPU: zb-h1, zb-h2, 2bw, recomputation (tiny: conv, batch norm, dropout, linear)"
# tests/data/models/tiny.yaml in 2 stages on one GPU (CUDA IPC), 40 minibatches of synthetic data
# (1,024 samples: one epoch),
# seed 7, 4 microbatches per update. Distances are each tensor's normwise relative difference
# (weights and batch-norm running statistics), the largest printed. Pass: zb-h1 and zb-h2 within
# 2e-2 of the CPU's --single (sequential SGD on the same batches: what both schedules compute),
# and within 1e-5 of the CUDA flush run (the same sums in the same order: bitwise where cuDNN's
# algorithms are deterministic; "bitwise" is printed when they are); 2bw within 2e-2 of the CPU
# executor's 2bw and nearer to it than to --single (the comparison can tell the two update rules
# apart); recomputation within 1e-6 of the same run without it (expected bitwise), and the
# test-only PDRT_INJECT_RECOMPUTE=bn-twice (the statistics updated by the recomputation too)
# more than 1e-4 away from it on the running statistics.
dist() { # dirA dirB [pattern]: the largest normwise relative difference over the .f32 files
    local f g worst=0 e
    for f in "$1"/${3:-*}.f32; do
        g="$2/${f##*/}"
        [ -f "$g" ] || { echo "missing ${f##*/}"; return; }
        e=$(paste <(od -An -v -f -w4 "$f") <(od -An -v -f -w4 "$g") |
            awk '{ d = $1 - $2; s += d * d; r += $1 * $1 } END { printf "%.3g", sqrt(s / (r > 0 ? r : 1)) }')
        worst=$(awk -v a="$worst" -v b="$e" 'BEGIN { print (b > a ? b : a) }')
    done
    echo "$worst"
}
below() { awk -v e="$1" -v b="$2" 'BEGIN { exit !(e ~ /^[0-9.eE+-]+$/ && e + 0 <= b + 0) }'; }
above() { awk -v e="$1" -v b="$2" 'BEGIN { exit !(e ~ /^[0-9.eE+-]+$/ && e + 0 > b + 0) }'; }
sched_check() {
    local p="$out/sched" ok=1 g
    rm -rf "$p" && mkdir -p "$p"
    if [ -x bin/pdplan ] && bin/pdplan tests/data/models/tiny.yaml -n 2 --straight -q -o "$p/cpu" >/dev/null 2>&1 &&
        bin/pdplan tests/data/models/tiny.yaml -n 2 --straight -q --backend cuda -o "$p/cuda" >/dev/null 2>&1; then
        echo "(generated with bin/pdplan)"
    else
        cp -r bench/gpu_pipeline/tiny_cpu "$p/cpu" && cp -r bench/gpu_pipeline/tiny_cuda "$p/cuda" ||
            { echo "FAIL schedules: no sources"; return 1; }
    fi
    make -s -C "$p/cpu" PDRT_ROOT="$PWD" "${blas[@]}" stages >"$p/build.log" 2>&1 &&
        make -s -C "$p/cuda" PDRT_ROOT="$PWD" "${blas[@]}" >>"$p/build.log" 2>&1 ||
        { tail -n 30 "$p/build.log"; echo "FAIL schedules build"; return 1; }
    local mpi=(mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1)
    [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
    local args=(--steps 40 --data synthetic --synthetic-n 1024 --seed 7 --microbatches 4 --no-eval --no-trace)
    run2() { # backend name options...: a 2-stage run saving to $p/w_name (INJ: the injection)
        local b=$1 n=$2 inj=(); shift 2
        [ -n "${INJ:-}" ] && inj=(-x "PDRT_INJECT_RECOMPUTE=$INJ")
        timeout -k 5 120 "${mpi[@]}" "${inj[@]}" -np 1 "$p/$b/stage_0" "${args[@]}" "$@" --save "$p/w_$n" --run-dir "$p/run_$n" : \
            -np 1 "$p/$b/stage_1" "${args[@]}" "$@" --save "$p/w_$n" --run-dir "$p/run_$n" >"$p/$n.log" 2>&1 ||
            { tail -n 15 "$p/$n.log"; echo "FAIL schedules: the $n run"; ok=0; }
    }
    OPENBLAS_NUM_THREADS=1 timeout -k 5 120 "$p/cpu/pd_single" --single --schedule flush "${args[@]}" \
        --save "$p/w_single" --run-dir "$p/run_single" >"$p/single.log" 2>&1 || { echo "FAIL schedules: --single"; ok=0; }
    run2 cpu cpu_2bw --schedule 2bw
    for g in zb-h1 zb-h2 flush 2bw; do run2 cuda "$g" --schedule "$g"; done
    run2 cuda rc_on --schedule 1f1b --recompute
    run2 cuda rc_off --schedule 1f1b --no-recompute
    INJ=bn-twice run2 cuda rc_bn2 --schedule 1f1b --recompute
    grep -h 'memory plan' "$p/zb-h1.log" "$p/rc_on.log"
    local d
    for g in zb-h1 zb-h2; do
        d=$(dist "$p/w_single" "$p/w_$g"); echo "cuda $g vs cpu --single: $d"
        below "$d" 2e-2 || { echo "FAIL schedules: $g"; ok=0; }
        d=$(dist "$p/w_flush" "$p/w_$g"); echo "cuda $g vs cuda flush: $d$(diff -rq "$p/w_flush" "$p/w_$g" >/dev/null && echo ' (bitwise)')"
        below "$d" 1e-5 || { echo "FAIL schedules: $g's split backward is not flush's backward"; ok=0; }
    done
    d=$(dist "$p/w_cpu_2bw" "$p/w_2bw"); local t; t=$(dist "$p/w_single" "$p/w_2bw")
    echo "cuda 2bw vs cpu 2bw: $d; vs cpu --single (teeth): $t"
    below "$d" 2e-2 && above "$t" "$d" || { echo "FAIL schedules: 2bw"; ok=0; }
    d=$(dist "$p/w_rc_off" "$p/w_rc_on"); t=$(dist "$p/w_rc_off" "$p/w_rc_bn2" '*running*')
    echo "cuda recompute on vs off: $d$(diff -rq "$p/w_rc_off" "$p/w_rc_on" >/dev/null && echo ' (bitwise)');" \
        "batch norm updated twice (teeth), running statistics: $t"
    below "$d" 1e-6 && above "$t" 1e-4 || { echo "FAIL schedules: recomputation"; ok=0; }
    [ $ok = 1 ] && echo "PASS schedules: zb-h1, zb-h2, 2bw and recomputation on the GPU match the CPU's"
    [ $ok = 1 ]
}
sched_check || status=1

say "interleaved on the GPU: fmnist_cnn, 2 ranks x 2 chunks on one GPU (CUDA IPC)"
# The rank binaries (pdrt_cuda_main_chunks) train 40 minibatches of synthetic data, seed 7; the
# interleaved schedule computes sequential SGD in batches of the plan's M, so the CPU's --single
# of the same plan is the reference (bit for bit on the CPU executor). Pass: every tensor within 2e-2 (normwise,
# relative), the IPC transport used. (Without a GPU, tests/cli/test_cuda_executor_host.sh runs
# the same executor on a host stand-in: bit for bit the CPU's.)
inter_check() {
    local p="$out/inter" ok=1 n=0 f e
    rm -rf "$p" && mkdir -p "$p"
    if [ -x bin/pdplan ] && bin/pdplan models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 2 -q \
            -o "$p/cpu" >/dev/null 2>&1 && bin/pdplan models/fmnist_cnn.yaml -n 2 --schedule interleaved \
            --chunks 2 -q --backend cuda -o "$p/cuda" >/dev/null 2>&1; then
        echo "(generated with bin/pdplan)"
    else
        cp -r bench/gpu_pipeline/inter_cpu "$p/cpu" && cp -r bench/gpu_pipeline/inter_cuda "$p/cuda" ||
            { echo "FAIL interleaved: no sources"; return 1; }
    fi
    make -s -C "$p/cpu" PDRT_ROOT="$PWD" "${blas[@]}" pd_single >"$p/build.log" 2>&1 &&
        make -s -C "$p/cuda" PDRT_ROOT="$PWD" "${blas[@]}" >>"$p/build.log" 2>&1 ||
        { tail -n 30 "$p/build.log"; echo "FAIL interleaved build"; return 1; }
    local mpi=(mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1)
    [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
    local args=(--steps 40 --data synthetic --seed 7 --no-eval --no-trace)
    OPENBLAS_NUM_THREADS=1 timeout -k 5 120 "$p/cpu/pd_single" --single \
        "${args[@]}" --save "$p/w_single" --run-dir "$p/run_single" >"$p/single.log" 2>&1 ||
        { tail -n 10 "$p/single.log"; echo "FAIL interleaved: --single"; return 1; }
    timeout -k 5 120 "${mpi[@]}" -np 1 "$p/cuda/rank_0" "${args[@]}" --save "$p/w_cuda" --run-dir "$p/run_cuda" : \
        -np 1 "$p/cuda/rank_1" "${args[@]}" --save "$p/w_cuda" --run-dir "$p/run_cuda" >"$p/cuda.log" 2>&1 ||
        { tail -n 20 "$p/cuda.log"; echo "FAIL interleaved run"; return 1; }
    grep -E 'link to rank|memory plan' "$p/cuda.log"
    grep -q 'link to rank 1: cuda-ipc' "$p/cuda.log" || { echo "FAIL interleaved: rank 0 did not use CUDA IPC"; ok=0; }
    grep -E '^steps' "$p/cuda.log" "$p/single.log"
    for f in "$p"/w_single/*.f32; do
        e=$(dist "$p/w_single" "$p/w_cuda" "$(basename "${f%.f32}")")
        n=$((n + 1))
        below "$e" 2e-2 || { echo "FAIL interleaved: ${f##*/} differs by $e"; ok=0; }
    done
    echo "weights compared: $n tensors, largest difference $(dist "$p/w_single" "$p/w_cuda")"
    [ "$n" -gt 0 ] && [ $ok = 1 ] && echo "PASS interleaved: 2 ranks x 2 chunks on one GPU match the CPU's --single"
    [ "$n" -gt 0 ] && [ $ok = 1 ]
}
inter_check || status=1

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

say "pdprof --backend cuda (bin/pdprof carried from the CPU machine, libyaml linked in)"
# per-layer GPU kernel times; their sum beside the full training step above (the step adds the
# optimizer and the launches between layers)
if [ -x bin/pdprof ] && bin/pdprof --help >/dev/null 2>&1; then
    for m in fmnist_cnn vgg16 alexnet resnet50; do
        for p in fp32 bf16; do
            timeout -k 5 120 bin/pdprof "models/$m.yaml" --backend cuda --precision "$p" -q \
                -o "$out/$m.cuda.$p.yaml" >"$out/pdprof_${m}_$p.log" 2>&1 ||
                { echo "pdprof $m $p FAILED: $(tail -2 "$out/pdprof_${m}_$p.log")"; continue; }
            awk -v m="$m" -v p="$p" '/^batch:/ { b = $2 }
                /forward_ms/ { match($0, /forward_ms: [^,]*/); f += substr($0, RSTART + 12, RLENGTH - 12)
                               match($0, /backward_ms: [^,]*/); k += substr($0, RSTART + 13, RLENGTH - 13) }
                END { printf "pdprof %s %s batch %s: forward %.2f ms, backward %.2f ms, sum %.2f ms\n", m, p, b, f, k, f + k }' \
                "$out/$m.cuda.$p.yaml"
        done
    done
else
    echo "bin/pdprof not carried or cannot run here (ldd: $(ldd bin/pdprof 2>&1 | grep -c 'not found') libraries missing)"
fi

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
