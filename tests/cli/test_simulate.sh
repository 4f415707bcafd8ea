#!/usr/bin/env bash
# test_simulate.sh: pdprof end to end (a measured fmnist_cnn profile that pdplan accepts; --train's
# profile measured inside training; the CUDA backend and bad --train options refused), GNMT-8's
# stages generated (its lstm layers have kernels),
# and pdplan --simulate (its report beside the DP's prediction from plan.yaml, a Chrome trace
# that parses as JSON).
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
PDPROF=${PDPROF:-$ROOT/bin/pdprof}

if [ ! -x "$PDPROF" ]; then
    skip pdprof "$PDPROF is not built (make bin/pdprof)"
else
    expect_status 0 pdprof_help "$PDPROF" --help && pass pdprof_help
    if expect_status 0 pdprof_fmnist "$PDPROF" models/fmnist_cnn.yaml --batch 4 --repeats 3 \
        -o "$TMP/fm.yaml"; then
        n=$(grep -c 'forward_ms:' "$TMP/fm.yaml")
        conv=$(sed -n 's/.*name: conv1, forward_ms: \([^,]*\),.*/\1/p' "$TMP/fm.yaml")
        if grep -q '^pd_profile: 1$' "$TMP/fm.yaml" && grep -q '^batch: 4$' "$TMP/fm.yaml" &&
            [ "$n" = 14 ] && awk -v c="$conv" 'BEGIN {exit !(c > 0)}' &&
            ! grep -q 'forward_ms: -' "$TMP/fm.yaml"; then
            pass pdprof_fmnist
        else
            fail pdprof_fmnist "unexpected profile (layers $n, conv1 $conv)"
        fi
        if expect_status 0 pdplan_reads_pdprof "$PDPLAN" models/fmnist_cnn.yaml -p "$TMP/fm.yaml" \
            --no-codegen -q -o "$TMP/fmplan"; then
            case "$OUTPUT" in
            *"batch 4"*) pass pdplan_reads_pdprof ;;
            *) fail pdplan_reads_pdprof "no batch-scaling warning: $OUTPUT" ;;
            esac
        fi
    fi
    # --backend cuda: the GPU kernels where a GPU is; otherwise exit 2 saying why, nothing written
    "$PDPROF" models/fmnist_cnn.yaml --backend cuda --batch 8 --repeats 2 --rounds 2 -q -o "$TMP/cu.yaml" >"$TMP/cu.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
        if grep -q '^device: cuda$' "$TMP/cu.yaml" && [ "$(grep -c 'forward_ms:' "$TMP/cu.yaml")" = 14 ] &&
            ! grep -q '_ms: -' "$TMP/cu.yaml"; then pass pdprof_cuda
        else fail pdprof_cuda "$(head -5 "$TMP/cu.yaml")"; fi
    elif [ "$rc" = 2 ] && grep -q -e 'no CUDA GPU here' -e 'built without CUDA' "$TMP/cu.log" && [ ! -e "$TMP/cu.yaml" ]; then
        pass pdprof_cuda_refused_without_gpu
        skip pdprof_cuda "$(sed 's/.*--backend cuda: //; s/;.*//' "$TMP/cu.log")"
    else
        fail pdprof_cuda "exit $rc: $(cat "$TMP/cu.log")"
    fi
    # --train: the model planned as one stage, built, trained; the runtime's per-layer profile
    if expect_status 0 pdprof_train "$PDPROF" tests/data/models/tiny.yaml --train --steps 12 -q -o "$TMP/tt.yaml"; then
        want=$(grep -c '{name:' tests/data/models/tiny.yaml)
        if grep -q '^# Measured by pdprof --train' "$TMP/tt.yaml" && grep -q '^pd_profile: 1$' "$TMP/tt.yaml" &&
            [ "$(grep -c 'forward_ms:' "$TMP/tt.yaml")" = "$want" ] && ! grep -q '_ms: -' "$TMP/tt.yaml" &&
            expect_status 0 pdplan_reads_pdprof_train "$PDPLAN" tests/data/models/tiny.yaml -p "$TMP/tt.yaml" \
                -n 2 --no-codegen -q -o "$TMP/ttplan"; then
            pass pdprof_train
        else
            fail pdprof_train "$(head -12 "$TMP/tt.yaml")"
        fi
    fi
    # --jobs N: N trainings at once, their profiles averaged
    if expect_status 0 pdprof_train_jobs "$PDPROF" tests/data/models/tiny.yaml --train --jobs 2 --steps 12 -q -o "$TMP/tj.yaml"; then
        if grep -q '(2 jobs at once, averaged)' "$TMP/tj.yaml" && grep -q '^pd_profile: 1$' "$TMP/tj.yaml" &&
            [ "$(grep -c 'forward_ms:' "$TMP/tj.yaml")" = "$(grep -c '{name:' tests/data/models/tiny.yaml)" ]; then
            pass pdprof_train_jobs
        else
            fail pdprof_train_jobs "$(head -3 "$TMP/tj.yaml")"
        fi
    fi
    for bad in "--steps 5" "--train --estimate cpu" "--train --batch 3" "--train --backend cuda" "--keep" \
        "--precision bf16" "--backend cuda --precision fp16" "--train --data /nonexistent" \
        "--train --repeats 2" "--data synthetic"; do
        # shellcheck disable=SC2086
        if expect_status 2 "pdprof_refuses ($bad)" "$PDPROF" tests/data/models/tiny.yaml $bad -o "$TMP/no.yaml"; then
            if [ -e "$TMP/no.yaml" ]; then fail "pdprof_refuses ($bad)" "wrote a profile"
            else pass "pdprof_refuses ($bad)"; fi
        fi
    done
    # an unwritable -o is found before any measuring; a signal stops --train's children and
    # removes its folder
    if expect_status 2 pdprof_bad_output "$PDPROF" tests/data/models/tiny.yaml --train -o "$TMP/no/such/dir/p.yaml"; then
        case "$OUTPUT" in *"cannot write"*) pass pdprof_bad_output ;; *) fail pdprof_bad_output "$OUTPUT" ;; esac
    fi
    mkdir -p "$TMP/ptmp"
    TMPDIR=$TMP/ptmp "$PDPROF" tests/data/models/tiny.yaml --train --steps 1000000 -q -o "$TMP/sig.yaml" >/dev/null 2>&1 &
    pp=$!
    for _ in $(seq 50); do pgrep -f "$TMP/ptmp/.*stage_0" >/dev/null && break; sleep 0.2; done
    kill -TERM "$pp"
    wait "$pp"
    rc=$?
    sleep 1
    if [ "$rc" -ne 0 ] && ! pgrep -f "$TMP/ptmp" >/dev/null && [ -z "$(ls -A "$TMP/ptmp")" ] && [ ! -e "$TMP/sig.yaml" ]; then
        pass pdprof_train_stops_on_signal
    else
        fail pdprof_train_stops_on_signal "exit $rc; left: $(pgrep -af "$TMP/ptmp" | head -3) $(ls -A "$TMP/ptmp")"
        pkill -f "$TMP/ptmp" 2>/dev/null
    fi
    expect_status 2 pdprof_bad_option "$PDPROF" models/fmnist_cnn.yaml --repeats 0 &&
        pass pdprof_bad_option
    if expect_status 0 pdprof_estimate "$PDPROF" models/gnmt8.yaml --estimate v100 -q \
        -o "$TMP/g8.yaml" && [ "$(grep -c 'forward_ms:' "$TMP/g8.yaml")" = 11 ]; then
        pass pdprof_estimate
    fi
fi

# ---- GNMT plans, and generates stages (its lstm layers have kernels) ----
if expect_status 0 gnmt8_generates "$PDPLAN" models/gnmt8.yaml -c clusters/cluster-a.yaml \
    -q -o "$TMP/g8plan"; then
    grep -q 'pdrt_lstm_forward(' "$TMP"/g8plan/stage_*.c && pass gnmt8_generates ||
        fail gnmt8_generates "no lstm call in its stages"
fi
expect_status 0 gnmt16_plans "$PDPLAN" models/gnmt16.yaml -c clusters/cluster-a.yaml \
    --no-codegen -q -o "$TMP/g16plan" && pass gnmt16_plans

# ---- pdplan --simulate ----
if expect_status 0 simulate_vgg16 "$PDPLAN" models/vgg16.yaml -p profiles/vgg16.h200.yaml \
    -c clusters/cluster-a.yaml --no-codegen --simulate -o "$TMP/sim"; then
    pred=$(sed -n 's/^bottleneck_ms: //p' "$TMP/sim/plan.yaml")
    steady=$(awk '/steady state/ {print $3}' <<<"$OUTPUT")
    shown=$(awk '/plan, ms\/minibatch/ {print $3; exit}' <<<"$OUTPUT")
    if [[ "$OUTPUT" == *"simulated 1f1b"* && "$OUTPUT" == *"speedup over DP"* &&
        "$OUTPUT" == *"communication saved"* ]] &&
        awk -v s="$steady" -v p="$pred" -v w="$shown" \
            'BEGIN {exit !(s > 0 && w - p < 1e-3 && p - w < 1e-3)}'; then
        pass simulate_vgg16
    else
        fail simulate_vgg16 "steady $steady, predicted $pred"
    fi
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=d["traceEvents"]; \
assert any(x.get("cat") == "compute" for x in e) and any(x.get("cat") == "transfer" for x in e)' \
        "$TMP/sim/sim_trace.json" 2>/dev/null; then
        pass simulate_trace_json
    else
        fail simulate_trace_json "sim_trace.json is not a trace with compute and transfer events"
    fi
fi
finish
