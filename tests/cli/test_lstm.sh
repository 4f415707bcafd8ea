#!/usr/bin/env bash
# test_lstm.sh: the lstm op end to end (docs/ops.md, "lstm"), on tests/data/models/tiny_lstm.yaml
# (models/lstm_lm.yaml's wiring scaled down, a bidirectional middle layer, the decoder tied to
# the embedding) and the Shakespeare corpus:
#  - our CPU kernels equal PyTorch's nn.LSTM on the same weights (output and every gradient,
#    1e-5 relative; docs/ops.md's parameter mapping), where /usr/bin/python3 has torch;
#  - a 2-stage flush pipeline ends with --single's weights after 40 steps (1e-5 relative), 1f1b
#    equals --emulate bit for bit, and the model learns (validation loss below ln 88); one stage
#    of 4 replicas: replicas identical, 1f1b equals --emulate, flush equals --single;
#  - tests/data/models/tiny_seq2seq.yaml (GNMT's wiring: a bidirectional encoder, the two-input
#    attention of an lstm decoder over it) on 3 stages: flush equals --single, 1f1b --emulate;
#  - models/gnmt8_reverse.yaml on the synthetic `reverse` task as a 4-stage pipeline: flush
#    equals --single, 1f1b --emulate; a `reverse` model without input [T] is a diagnostic;
#  - pdprof times every layer, the lstm layers included;
#  - with nvcc, the CUDA stages of models/lstm_lm.yaml and models/gnmt8_reverse.yaml compile and
#    link.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
M="$ROOT/tests/data/models/tiny_lstm.yaml"
make -s build/libpdrt.a bin/pdprof >/dev/null 2>&1 || { fail build_runtime "make failed"; finish; exit 1; }

# ---- against PyTorch's nn.LSTM ----
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    if cc -shared -fPIC -O2 -I. $(pkg-config --cflags openblas 2>/dev/null) -o "$TMP/libpdlstm.so" \
        runtime/cpu/ops_lstm.c $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm \
        >"$TMP/so.log" 2>&1; then
        out=$(/usr/bin/python3 tests/cli/lstm_torch_check.py "$TMP/libpdlstm.so" 2>&1) &&
            pass lstm_equals_torch_nn_lstm || fail lstm_equals_torch_nn_lstm "$out"
    else
        fail lstm_equals_torch_nn_lstm "$(cat "$TMP/so.log")"
    fi
else
    skip lstm_equals_torch_nn_lstm "no torch and numpy for /usr/bin/python3 (apt-get install python3-torch)"
fi

# ---- pipelines against their references ----
C=${PD_DATA_DIR:-$ROOT/data}/shakespeare_char
if [ ! -f "$C/train.bin" ]; then
    skip lstm_pipelines "no $C (make deps builds it)"
elif "$PDPLAN" "$M" -n 2 --straight -q -o "$TMP/g" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$TMP/g" >"$TMP/make.log" 2>&1; then
    common=(--seed 3 --no-trace --steps 40)
    expect_status 0 flush_runs "$LAUNCH" "$TMP/g" --schedule flush --microbatches 4 "${common[@]}" --no-eval --save "$TMP/pf" &&
        expect_status 0 flush_single_runs "$LAUNCH" "$TMP/g" --single --schedule flush --microbatches 4 "${common[@]}" --no-eval --save "$TMP/sf" &&
        { out=$(close_dirs "$TMP/pf" "$TMP/sf" 1e-5) && pass lstm_flush_2_stages_equals_single ||
              fail lstm_flush_2_stages_equals_single "$out"; }
    expect_status 0 1f1b_runs "$LAUNCH" "$TMP/g" --schedule 1f1b "${common[@]}" --save "$TMP/p1" &&
        python3 - "$TMP/g/run/summary.json" <<'PY' && pass lstm_learns || fail lstm_learns "$(cat "$TMP/g/run/summary.json")"
import json, math, sys
s = json.load(open(sys.argv[1]))
assert s["val_loss"] < math.log(88) - 0.5, s["val_loss"]
PY
    expect_status 0 1f1b_emulate_runs "$LAUNCH" "$TMP/g" --emulate --schedule 1f1b "${common[@]}" --save "$TMP/e1" &&
        { same_dirs "$TMP/p1" "$TMP/e1" && pass lstm_1f1b_equals_emulate || fail lstm_1f1b_equals_emulate; }
    # one stage of 4 replicas (fast links make data parallelism the plan): the replicas stay
    # bitwise identical, 1f1b equals its emulation, flush equals --single
    if "$PDPLAN" "$M" -n 4 -b 1e12 -q -o "$TMP/r4" >"$TMP/plan.log" 2>&1 &&
        grep -q 'stage 0 binary stage_0 replicas 4' "$TMP/r4/launch.conf" &&
        make -s -C "$TMP/r4" >"$TMP/make.log" 2>&1; then
        rc=(--seed 3 --no-trace --no-eval --steps 12)
        expect_status 0 r4_1f1b_runs "$LAUNCH" "$TMP/r4" "${rc[@]}" --check-replicas --save "$TMP/r4p" &&
            expect_status 0 r4_emulate_runs "$LAUNCH" "$TMP/r4" --emulate "${rc[@]}" --save "$TMP/r4e" &&
            { same_dirs "$TMP/r4p" "$TMP/r4e" && pass lstm_replicated_1f1b_equals_emulate ||
                  fail lstm_replicated_1f1b_equals_emulate; }
        expect_status 0 r4_flush_runs "$LAUNCH" "$TMP/r4" --schedule flush --microbatches 4 "${rc[@]}" --check-replicas --save "$TMP/r4f" &&
            expect_status 0 r4_single_runs "$LAUNCH" "$TMP/r4" --single --schedule flush --microbatches 4 "${rc[@]}" --save "$TMP/r4s" &&
            { out=$(close_dirs "$TMP/r4f" "$TMP/r4s" 1e-5) && pass lstm_replicated_flush_equals_single ||
                  fail lstm_replicated_flush_equals_single "$out"; }
    else
        fail plan_tiny_lstm_replicated "$(cat "$TMP/plan.log" "$TMP/make.log" "$TMP/r4/launch.conf" 2>/dev/null | head -5)"
    fi
else
    fail plan_and_build_tiny_lstm "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | head -5)"
fi

# ---- GNMT's wiring in miniature (tests/data/models/tiny_seq2seq.yaml) on 3 stages: the
# bidirectional encoder's keys and values and the embedding cross stage boundaries into the
# decoder's two-input attention ----
S="$ROOT/tests/data/models/tiny_seq2seq.yaml"
if [ ! -f "$C/train.bin" ]; then
    skip seq2seq_pipelines "no $C (make deps builds it)"
elif "$PDPLAN" "$S" -n 3 --straight -q -o "$TMP/s" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$TMP/s" >"$TMP/make.log" 2>&1; then
    common=(--seed 3 --no-trace --no-eval --steps 40)
    expect_status 0 s_flush_runs "$LAUNCH" "$TMP/s" --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/spf" &&
        expect_status 0 s_flush_single_runs "$LAUNCH" "$TMP/s" --single --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/ssf" &&
        { out=$(close_dirs "$TMP/spf" "$TMP/ssf" 1e-5) && pass seq2seq_flush_3_stages_equals_single ||
              fail seq2seq_flush_3_stages_equals_single "$out"; }
    expect_status 0 s_1f1b_runs "$LAUNCH" "$TMP/s" --schedule 1f1b "${common[@]}" --save "$TMP/sp1" &&
        expect_status 0 s_1f1b_emulate_runs "$LAUNCH" "$TMP/s" --emulate --schedule 1f1b "${common[@]}" --save "$TMP/se1" &&
        { same_dirs "$TMP/sp1" "$TMP/se1" && pass seq2seq_1f1b_equals_emulate || fail seq2seq_1f1b_equals_emulate; }
else
    fail plan_and_build_tiny_seq2seq "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | head -5)"
fi

# ---- models/gnmt8_reverse.yaml (GNMT-8's structure in miniature) on the synthetic `reverse`
# task as a 4-stage pipeline: flush equals --single, 1f1b equals --emulate; a `reverse` model
# needs input [T] ----
G="$ROOT/models/gnmt8_reverse.yaml"
if "$PDPLAN" "$G" -n 4 --straight -q -o "$TMP/gn" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$TMP/gn" >"$TMP/make.log" 2>&1; then
    common=(--seed 3 --no-trace --no-eval --steps 24 --synthetic-n 1024)
    expect_status 0 g_flush_runs "$LAUNCH" "$TMP/gn" --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/gpf" &&
        expect_status 0 g_flush_single_runs "$LAUNCH" "$TMP/gn" --single --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/gsf" &&
        { out=$(close_dirs "$TMP/gpf" "$TMP/gsf" 1e-5) && pass gnmt8_reverse_flush_4_stages_equals_single ||
              fail gnmt8_reverse_flush_4_stages_equals_single "$out"; }
    expect_status 0 g_1f1b_runs "$LAUNCH" "$TMP/gn" --schedule 1f1b "${common[@]}" --save "$TMP/gp1" &&
        expect_status 0 g_1f1b_emulate_runs "$LAUNCH" "$TMP/gn" --emulate --schedule 1f1b "${common[@]}" --save "$TMP/ge1" &&
        { same_dirs "$TMP/gp1" "$TMP/ge1" && pass gnmt8_reverse_1f1b_equals_emulate || fail gnmt8_reverse_1f1b_equals_emulate; }
else
    fail plan_and_build_gnmt8_reverse "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | head -5)"
fi
sed 's/^input: \[10\]/input: [2, 5]/' "$G" >"$TMP/bad_reverse.yaml"
if "$PDPLAN" "$TMP/bad_reverse.yaml" -q -o "$TMP/bad" >"$TMP/bad.log" 2>&1; then
    fail reverse_needs_input_T "planned"
elif grep -qE "bad_reverse.yaml:[0-9]+:[0-9]+: error: a token dataset needs 'input: \[T\]'" "$TMP/bad.log"; then
    pass reverse_needs_input_T
else
    fail reverse_needs_input_T "$(head -2 "$TMP/bad.log")"
fi

# ---- pdprof times the lstm layers ----
if expect_status 0 pdprof_lstm bin/pdprof "$M" -q -o "$TMP/prof.yaml"; then
    n=$(grep -c '{name:' "$M")
    [ "$(grep -c 'forward_ms:' "$TMP/prof.yaml")" = "$n" ] && grep -q 'lstm1' "$TMP/prof.yaml" &&
        ! grep -q '_ms: -' "$TMP/prof.yaml" && pass pdprof_lstm || fail pdprof_lstm "$(cat "$TMP/prof.yaml")"
fi

# ---- the CUDA stages of models/lstm_lm.yaml compile and link (running them needs a GPU:
# tests/cuda/test_ops_cuda.c checks the kernels there) ----
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="$PATH:/usr/local/cuda/bin"
    if make -s build/libpdrt_cuda.a >/dev/null 2>&1 &&
        "$PDPLAN" models/lstm_lm.yaml -n 2 --straight -q --backend cuda -o "$TMP/gcu" >"$TMP/plan.log" 2>&1 &&
        make -s -C "$TMP/gcu" >"$TMP/make.log" 2>&1; then
        grep -q 'pdrt_lstm_backward_cuda(ctx' "$TMP/gcu/stage_1.cu" && pass cuda_lstm_lm_stages_build ||
            fail cuda_lstm_lm_stages_build "no lstm call in stage_1.cu"
    else
        fail cuda_lstm_lm_stages_build "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | tail -5)"
    fi
    if "$PDPLAN" "$G" -n 4 --straight -q --backend cuda -o "$TMP/gncu" >"$TMP/plan.log" 2>&1 &&
        make -s -C "$TMP/gncu" >"$TMP/make.log" 2>&1; then
        grep -q 'pdrt_cross_attention_backward_cuda(ctx' "$TMP"/gncu/stage_*.cu &&
            pass cuda_gnmt8_reverse_stages_build || fail cuda_gnmt8_reverse_stages_build "no attention call"
    else
        fail cuda_gnmt8_reverse_stages_build "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | tail -5)"
    fi
else
    skip cuda_lstm_lm_stages_build "no nvcc"
fi
finish
