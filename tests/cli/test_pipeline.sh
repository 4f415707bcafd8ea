#!/usr/bin/env bash
# test_pipeline.sh: generated stages trained through scripts/pdlaunch: a 2-stage and a 3-stage
# pipeline of a small synthetic model give bit for bit the weights of the independent
# single-process emulation of PipeDream's 1F1B weight versions (--emulate), and not those of
# plain sequential SGD (--single); fmnist_cnn runs on real data; summary.json has its fields;
# killing a rank stops the job within 10 s with a message naming the rank and the stage.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

# conv, batch norm, max pool, flatten, dropout, linear, relu: every stage has parameters
cp "$ROOT/tests/data/models/tiny.yaml" "$TMP/tiny.yaml"

# a DAG: the skip connection a_relu crosses two cuts and travels through the middle stage
cp "$ROOT/tests/data/models/tiny_dag.yaml" "$TMP/dag.yaml"

for n in 2 3 dag; do
    gen=$TMP/tiny$n model=$TMP/tiny.yaml
    [ "$n" = dag ] && { model=$TMP/dag.yaml; n=3; gen=$TMP/dag3; }
    if ! "$PDPLAN" "$model" -n "$n" --straight -q -o "$gen" >"$TMP/plan.log" 2>&1 ||
       ! make -s -C "$gen" >"$TMP/make.log" 2>&1; then
        fail "pipeline_${n}_stages_build" "$(tail -5 "$TMP/plan.log" "$TMP/make.log")"
        continue
    fi
    [ "$(grep -c '^stage ' "$gen/launch.conf")" = "$n" ] || { fail "pipeline_${n}_stages_build" "not $n stages"; continue; }
    common=(--data synthetic --synthetic-n 512 --steps 14 --seed 7 --log-every 7)
    [ "$gen" = "$TMP/dag3" ] && n=dag
    if expect_status 0 "pipeline_${n}_stages_runs" "$LAUNCH" "$gen" "${common[@]}" --save "$TMP/p$n"; then
        grep -q 'step 14/[0-9]* loss' <<<"$OUTPUT" && [ -f "$gen/run/summary.json" ] &&
            pass "pipeline_${n}_stages_runs" || fail "pipeline_${n}_stages_runs" "$OUTPUT"
        [ "$gen" = "$TMP/tiny$n" ] && cp "$gen/run/summary.json" "$TMP/summary$n.json"
        cp "$gen/run/profile.yaml" "$TMP/profile_$n.yaml" 2>/dev/null
    fi
    expect_status 0 "emulate_${n}_runs" "$LAUNCH" "$gen" --emulate "${common[@]}" --save "$TMP/e$n"
    expect_status 0 "single_${n}_runs" "$LAUNCH" "$gen" --single "${common[@]}" --save "$TMP/s$n"
    if same_dirs "$TMP/p$n" "$TMP/e$n"; then pass "pipeline_${n}_equals_emulation"
    else fail "pipeline_${n}_equals_emulation"; fi
    # stale weights matter: 1F1B is not sequential SGD, so the comparison above has teeth
    if ! same_dirs "$TMP/p$n" "$TMP/s$n"; then pass "pipeline_${n}_differs_from_sequential"
    else fail "pipeline_${n}_differs_from_sequential" "1F1B gave sequential SGD's weights"; fi
done

# --init reads what --save wrote: training 0 further steps is not allowed, so compare a run
# started from saved weights with the emulation started from the same weights
if [ -d "$TMP/p2" ]; then
    expect_status 0 init_pipeline "$LAUNCH" "$TMP/tiny2" --data synthetic --synthetic-n 512 --steps 5 --init "$TMP/p2" --save "$TMP/ip" --no-eval
    expect_status 0 init_emulate "$LAUNCH" "$TMP/tiny2" --emulate --data synthetic --synthetic-n 512 --steps 5 --init "$TMP/p2" --save "$TMP/ie" --no-eval
    if same_dirs "$TMP/ip" "$TMP/ie" && ! same_dirs "$TMP/ip" "$TMP/p2"; then pass init_and_save
    else fail init_and_save; fi
fi

s=$TMP/summary3.json
if [ -f "$s" ] && python3 - "$s" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["steps"] == 14 and d["stages"] == 3, d
assert 0 <= d["test_accuracy"] <= 1 and d["final_loss"] > 0 and d["samples_per_s"] > 0 and d["wall_s"] > 0
assert len(d["per_stage"]) == 3
for st in d["per_stage"]:
    assert st["measured_ms"] > 0 and st["predicted_ms"] > 0, st
    # one replica per stage here: the slowest replica is the stage's own
    assert st["slowest_replica_compute_ms"] == st["measured_compute_ms"], st
EOF
then pass summary_json_fields; else fail summary_json_fields "$(cat "$s" 2>/dev/null | head -20)"; fi

# every pipeline run leaves the per-layer profile its stages measured inside training
# (runtime/laps.c): each model layer once, in model order, from all three stages of the DAG;
# pdplan reads it
# (--emulate and --single, which ran after the pipeline in the same folder, time no layers and
# must not leave the pipeline's profile beside their summary.json)
pr=$TMP/profile_dag.yaml
if [ -e "$TMP/dag3/run/profile.yaml" ]; then fail single_removes_stale_profile
else pass single_removes_stale_profile; fi
if [ -f "$pr" ] && python3 - "$pr" "$TMP/dag.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
assert re.search(r"^pd_profile: 1$", text, re.M) and re.search(r"^model: tiny_dag$", text, re.M), text
assert re.search(r"^batch: 8$", text, re.M), text
rows = re.findall(r"- \{name: (\w+), forward_ms: ([^,]+), backward_ms: ([^,]+), activation_bytes: (\d+), parameter_bytes: (\d+)\}", text)
names = re.findall(r"\{name: (\w+), op:", open(sys.argv[2]).read())
assert [r[0] for r in rows] == names, (rows, names)
for r in rows:
    assert float(r[1]) >= 0 and float(r[2]) >= 0, r
# a linear 16 -> 16 layer: 272 parameters; its relu none
assert int(rows[0][4]) == 4 * 272 and int(rows[1][4]) == 0 and int(rows[0][3]) == 4 * 8 * 16, rows
assert sum(float(r[1]) + float(r[2]) for r in rows) > 0
EOF
then
    pass run_writes_profile
    expect_status 0 run_profile_feeds_pdplan "$PDPLAN" "$TMP/dag.yaml" -p "$pr" -n 2 -q --no-codegen -o "$TMP/fromrun" &&
        pass run_profile_feeds_pdplan
else
    fail run_writes_profile "$(head -20 "$pr" 2>&1)"
fi

# --target-accuracy: stops after the first epoch that reaches it and reports the time
if [ -x "$TMP/tiny2/stage_0" ]; then
    expect_status 0 target_accuracy_runs "$LAUNCH" "$TMP/tiny2" --data synthetic --synthetic-n 256 --epochs 4 --target-accuracy 0.05
    if python3 - "$TMP/tiny2/run/summary.json" <<'EOF2'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["epochs"] == 1 and d["steps"] == 16, d
assert d["target_accuracy"] == 0.05 and d["time_to_target_s"] > 0, d
EOF2
    then pass target_accuracy_stops; else fail target_accuracy_stops "$(cat "$TMP/tiny2/run/summary.json")"; fi
fi

# fmnist_cnn on real Fashion-MNIST, 2 stages, a few steps
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    g=$TMP/fm
    if "$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q -o "$g" >/dev/null 2>&1 && make -s -C "$g" >/dev/null 2>&1; then
        if expect_status 0 fmnist_pipeline_runs "$LAUNCH" "$g" --steps 6 --log-every 3 --no-eval; then
            grep -q 'step 6/937 loss' <<<"$OUTPUT" && pass fmnist_pipeline_runs || fail fmnist_pipeline_runs "$OUTPUT"
        fi
        # a bad option is an error, not a run
        expect_status 2 pdlaunch_bad_option "$LAUNCH" "$g" --bogus && pass pdlaunch_bad_option
    else
        fail fmnist_pipeline_runs "plan or build failed"
    fi
else
    skip fmnist_pipeline_runs "no Fashion-MNIST at /usr/share/datasets/fashion-mnist"
fi

# kill -9 one rank mid-run: the job stops within 10 s, names rank and stage, exits non-zero
gen=$TMP/tiny3
if [ -x "$gen/stage_1" ]; then
    "$LAUNCH" "$gen" --data synthetic --synthetic-n 4096 --steps 100000 --log-every 1 --no-eval \
        >"$TMP/kill.out" 2>"$TMP/kill.err" &
    lp=$!
    for _ in $(seq 100); do grep -q 'loss' "$TMP/kill.out" && break; sleep 0.1; done
    victim=$(pgrep -f "^$gen/stage_1 " | head -1)
    if [ -z "$victim" ]; then
        fail kill_rank_stops_job "stage_1 never started: $(tail -3 "$TMP/kill.err")"
        kill "$lp" 2>/dev/null
    else
        t0=$(date +%s.%N)
        kill -9 "$victim"
        for _ in $(seq 150); do kill -0 "$lp" 2>/dev/null || break; sleep 0.1; done
        t1=$(date +%s.%N)
        if kill -0 "$lp" 2>/dev/null; then
            fail kill_rank_stops_job "still running after 15 s"
            pkill -P "$lp" 2>/dev/null; kill "$lp" 2>/dev/null
        else
            wait "$lp"; rc=$?
            secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
            if [ "$rc" -ne 0 ] && awk -v s="$secs" 'BEGIN { exit !(s < 10) }' &&
               grep -q 'pdlaunch: rank 1 (stage 1) failed' "$TMP/kill.err"; then
                pass kill_rank_stops_job
                echo "  killed rank stopped the job in ${secs}s (exit $rc)"
            else
                fail kill_rank_stops_job "rc $rc after ${secs}s: $(tail -4 "$TMP/kill.err" | tr '\n' '|')"
            fi
        fi
    fi
fi
finish
