#!/usr/bin/env bash
# test_cuda_executor_host.sh: the CUDA executor (runtime/cuda/executor_cuda*.c, the host
# transport) run without a GPU, on the host stand-in of the CUDA runtime (tests/cuda_host:
# "device" memory is host memory, the stages' forward and backward are the CPU backend's
# generated ones). What it proves is the executor's host logic (the schedule's actions, the
# stash of device weight blobs and the arena's plan, send slots and message tags, the replicas'
# all-reduce, tied weights, evaluation, --save), not the kernels (tests/cuda/test_ops_cuda.c, on
# a GPU) nor the IPC and NCCL transports. Each run's weights equal the CPU executor's bit for bit
# after the same steps on the same data:
#  - fmnist_cnn on 2 stages under 1f1b (its test accuracy too), zb-h1, 2bw and flush with
#    --recompute;
#  - fmnist_cnn interleaved, 2 ranks x 2 chunks (pdrt_cuda_main_chunks), which equals --single,
#    and with --recompute;
#  - a replicated plan (tiny, stage 0 twice), a tied model (tiny_tied; and interleaved, the tie
#    across ranks, clipped, its copies checked) and a token stream of B x T targets (the labels
#    behind every message).
# Needs the CUDA headers (not a GPU, nvcc or libcudart); SKIPs without them.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
if [ ! -f "${CUDA_HOME:-/usr/local/cuda}/include/cuda_runtime.h" ]; then
    skip cuda_executor_host "no CUDA headers (cuda_runtime.h)"
    finish
    exit $?
fi
make -s build/libpdrt.a build/cuda_host/libpdrt_cuda_host.a >"$TMP/lib.log" 2>&1 ||
    { fail build_host_stand_in "$(tail -5 "$TMP/lib.log")"; finish; exit 1; }
export PDRT_TRANSPORT=host ASAN_OPTIONS=detect_leaks=0

# plan NAME MODEL ARGS...: plan and build the CPU stages into $TMP/NAME, and the same stages
# (or interleaved ranks) as CUDA executor binaries on the stand-in into $TMP/NAME_host
plan() {
    local g=$TMP/$1 m=$2; shift 2
    "$PDPLAN" "$m" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1 ||
        { fail "plan_$(basename "$g")" "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; return 1; }
    local h=${g}_host key k w1 bin rest ids stages srcs
    rm -rf "$h" && cp -r "$g" "$h"
    while read -r key k w1 bin rest; do
        [ "$key" = stage ] || continue
        ids=$k
        [[ $bin == rank_* ]] && ids=$(grep -o '^extern const pdrt_stage S[0-9]*_stage' "$g/$bin.c" | grep -o '[0-9]*')
        stages="" srcs=""
        for i in $ids; do stages+="${stages:+,}&S${i}_stage"; srcs+=" stage_$i.c"; done
        make -s -C "$h" -f Makefile -f "$ROOT/tests/cuda_host/host.mk" host_bin HOST_OUT="$bin" \
            HOST_SOURCES="$srcs" HOST_STAGES="$stages" >"$TMP/host.log" 2>&1 ||
            { fail "host_build_$(basename "$g")" "$(tail -5 "$TMP/host.log")"; return 1; }
    done <"$g/launch.conf"
}

# same NAME GEN ARGS...: the CPU executor and the CUDA executor on the stand-in, the same run;
# their weights equal bit for bit, and the second was the CUDA executor's (summary.json's mode)
same() {
    local name=$1 g=$TMP/$2; shift 2
    expect_status 0 "${name}_cpu_runs" "$LAUNCH" "$g" "$@" --save "$TMP/$name.cpu" || return 1
    CPU_OUTPUT=$OUTPUT
    expect_status 0 "${name}_cuda_executor_runs" "$LAUNCH" "${g}_host" "$@" --save "$TMP/$name.cuda" ||
        return 1
    grep -q '"mode": "pipeline-cuda"' "${g}_host/run/summary.json" ||
        { fail "${name}_ran_the_cuda_executor" "$(grep mode "${g}_host/run/summary.json")"; return 1; }
    same_dirs "$TMP/$name.cuda" "$TMP/$name.cpu" && pass "${name}_equals_cpu_executor_bitwise" ||
        { fail "${name}_equals_cpu_executor_bitwise" "$(close_dirs "$TMP/$name.cuda" "$TMP/$name.cpu" 0)"; return 1; }
}
acc() { sed -n 's/.*"test_accuracy": \([0-9.]*\).*/\1/p' "$1"; }

run=(--steps 24 --seed 1)
if plan fm models/fmnist_cnn.yaml -n 2 --straight; then
    same fm_1f1b fm "${run[@]}" --eval-batches 3 &&
        { a=$(acc "$TMP/fm/run/summary.json"); b=$(acc "$TMP/fm_host/run/summary.json")
          [ -n "$a" ] && [ "$a" = "$b" ] && pass fm_1f1b_test_accuracy_equal ||
              fail fm_1f1b_test_accuracy_equal "cpu $a, cuda executor $b"; }
    python3 - "$TMP/fm_host/run/trace.json" <<'PY' && pass fm_1f1b_trace_written || fail fm_1f1b_trace_written
import json, sys
t = json.load(open(sys.argv[1]))
ev = t["traceEvents"] if isinstance(t, dict) else t
names = {e.get("name", "").split()[0] for e in ev if e.get("ph") == "X"}
assert {"forward", "backward", "send_act", "recv_grad"} <= names, names
PY
    same fm_zbh1 fm "${run[@]}" --no-eval --schedule zb-h1 --microbatches 4
    same fm_2bw fm "${run[@]}" --no-eval --schedule 2bw --microbatches 4
    same fm_flush_recompute fm "${run[@]}" --no-eval --schedule flush --microbatches 4 --recompute
fi
if plan fi models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 2; then
    if same fm_interleaved fi "${run[@]}" --eval-batches 3; then
        a=$(acc "$TMP/fi/run/summary.json"); b=$(acc "$TMP/fi_host/run/summary.json")
        [ -n "$a" ] && [ "$a" = "$b" ] && pass fm_interleaved_test_accuracy_equal ||
            fail fm_interleaved_test_accuracy_equal "cpu $a, cuda executor $b"
        same fm_interleaved_recompute fi "${run[@]}" --no-eval --recompute
        expect_status 0 fm_interleaved_single_runs "$LAUNCH" "$TMP/fi" --single "${run[@]}" --no-eval \
            --save "$TMP/fi.single" &&
            { same_dirs "$TMP/fm_interleaved.cuda" "$TMP/fi.single" &&
                  pass fm_interleaved_cuda_executor_equals_single_bitwise ||
                  fail fm_interleaved_cuda_executor_equals_single_bitwise; }
    fi
fi

syn=(--data synthetic --synthetic-n 256 --seed 3 --no-eval)
if plan rep tests/data/models/tiny.yaml -n 4 --schedule 2bw --microbatches 8; then
    grep -q 'replicas 2' "$TMP/rep/launch.conf" && same tiny_replicated_2bw rep "${syn[@]}" --steps 16 ||
        fail tiny_replicated_plan "$(cat "$TMP/rep/launch.conf")"
fi
plan tied tests/data/models/tiny_tied.yaml -n 2 --straight && same tiny_tied_1f1b tied "${syn[@]}" --steps 13
# interleaved with a tie across ranks (stages 0 and 3) and clipping: the CPU executor's code on a
# host mirror of the chunks (executor_cuda_chunks.c)
if plan ti tests/data/models/tiny_tied.yaml -n 2 --schedule interleaved --chunks 2 --microbatches 4; then
    if same tiny_tied_interleaved_clipped ti "${syn[@]}" --steps 16 --clip-grad-norm 0.05 --check-replicas; then
        grep -q "stage 3: tied weights identical to their owners' after 4 updates" <<<"$OUTPUT" &&
            pass tiny_tied_interleaved_copies_identical ||
            fail tiny_tied_interleaved_copies_identical "$(tail -3 <<<"$OUTPUT")"
        expect_status 0 tiny_tied_interleaved_unclipped_runs "$LAUNCH" "${TMP}/ti_host" "${syn[@]}" \
            --steps 16 --save "$TMP/ti.unclipped" &&
            { same_dirs "$TMP/ti.unclipped" "$TMP/tiny_tied_interleaved_clipped.cuda" &&
                  fail tiny_tied_interleaved_clipping_has_teeth "clipping changed nothing" ||
                  pass tiny_tied_interleaved_clipping_has_teeth; }
    fi
fi

# a token stream: B x T = 32 targets behind each message, more than the tensors' sizes alone
if tiny_corpus "$TMP/corp"; then
    tiny_tokens_model "$TMP/tok.yaml"
    plan tok "$TMP/tok.yaml" -n 2 --straight &&
        same tokens_flush tok --data "$TMP/corp" --seed 3 --no-trace --steps 16 --schedule flush \
            --microbatches 4 --eval-batches 2
else
    fail tiny_corpus "prepare_shakespeare.py --text failed"
fi
finish
