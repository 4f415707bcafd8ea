#!/usr/bin/env bash
# test_interleaved.sh: pdplan --schedule interleaved --chunks V end to end:
#  - fmnist_cnn on 2 workers with 2 chunks: plan.yaml records the schedule, `chunks: 2`, the
#    microbatches and stage s on rank s mod 2 with Megatron's warm-up of its rank; the price is
#    the slowest rank's sum of its chunks' times; --simulate times it; GENDIR/schedule holds it
#    (actions naming their stage); the generated rank_R binaries (each linking its chunks' stages)
#    train 40 steps to --single's weights bit for bit (with --recompute too, whose skipping the
#    test-only injection shows), which per-minibatch SGD (1f1b's --single)
#    does not give, so the comparison has teeth; run/trace.json draws each chunk on its own rows;
#  - a DAG (tiny_dag: add, concat, a skip over cuts) likewise, with evaluation on; tiny (batch
#    norm, dropout) on 3 ranks with --eval-every segments ending in short batches likewise;
#  - bad combinations are diagnostics with exit status 2: --chunks without interleaved,
#    microbatches not a multiple of the workers, too few layers for p * v stages, the CUDA
#    backend, one worker, a bad --chunks, a worker's simulated memory over --memory; a
#    one-stage-per-rank binary refuses --schedule
#    interleaved, and a rank binary refuses to run on the wrong number of ranks.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

G=$TMP/cnn
if expect_status 0 plan_fmnist_interleaved "$PDPLAN" models/fmnist_cnn.yaml -n 2 --schedule interleaved \
    --chunks 2 --microbatches 4 --simulate -o "$G"; then
    pass plan_fmnist_interleaved
    y=$G/plan.yaml
    grep -q '^schedule: "\?interleaved"\?$' "$y" && grep -q '^chunks: 2$' "$y" && grep -q '^microbatches: 4$' "$y" &&
        grep -q '^workers: 2$' "$y" && pass plan_yaml_records_interleaved ||
        fail plan_yaml_records_interleaved "$(grep -E '^(schedule|chunks|microbatches|workers):' "$y")"
    # stage s on rank s mod 2; warm-up (p - r - 1) 2 + (v - 1) p: rank 0 4, rank 1 2
    got=$(awk '/^    ranks:/ {printf "%s", $2} /^    warmup:/ {printf "%s ", $2}' "$y")
    [ "$got" = "[0]4 [1]2 [0]4 [1]2 " ] && pass stages_mapped_round_robin || fail stages_mapped_round_robin "$got"
    python3 - "$y" <<'PY' && pass price_is_rank_sum || fail price_is_rank_sum "$(grep -E 'bottleneck|time_ms' "$y")"
import re, sys
t = open(sys.argv[1]).read()
times = [float(x) for x in re.findall(r'^    time_ms: (\S+)$', t, re.M)]
b = float(re.search(r'^bottleneck_ms: (\S+)$', t, re.M).group(1))
want = max(times[0] + times[2], times[1] + times[3])
sys.exit(0 if len(times) == 4 and abs(b - want) <= 1e-9 * want else 1)
PY
    head -1 "$G/schedule" | grep -q 'interleaved, 4 stages, 2 ranks.*2 chunks per rank' &&
        grep -q '^  recv_act 0 <- 1 @ 2$' "$G/schedule" && pass schedule_written ||
        fail schedule_written "$(head -3 "$G/schedule")"
    grep -q '^simulated interleaved: 2 ranks, 4 stages' <<<"$OUTPUT" && pass simulated ||
        fail simulated "$(grep simulated <<<"$OUTPUT")"
    if make -s -C "$G" >"$TMP/make.log" 2>&1; then
        run=(--steps 40 --seed 1 --no-eval)
        expect_status 0 cnn_single_runs "$LAUNCH" "$G" --single "${run[@]}" --save "$TMP/cnn_s" &&
            expect_status 0 cnn_interleaved_runs "$LAUNCH" "$G" "${run[@]}" --save "$TMP/cnn_i" &&
            { same_dirs "$TMP/cnn_i" "$TMP/cnn_s" && pass cnn_interleaved_equals_single_bitwise ||
                fail cnn_interleaved_equals_single_bitwise "$(close_dirs "$TMP/cnn_i" "$TMP/cnn_s" 1e-5)"; }
        python3 - "$G/run/trace.json" <<'PY' && pass trace_draws_each_chunk || fail trace_draws_each_chunk "$(head -c 600 "$G/run/trace.json")"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
rows = {(e["pid"], e["tid"]) for e in ev if e["ph"] == "X" and e["name"].startswith("forward")}
names = [e["args"]["name"] for e in ev if e["name"] == "process_name"]
sys.exit(0 if rows == {(0, 0), (0, 2), (1, 0), (1, 2)} and "rank 1: stages 1, 3, ... (2 chunks)" in names else 1)
PY
        # recomputation (each chunk's one working buffer) leaves the weights bit for bit
        expect_status 0 cnn_interleaved_recompute_runs "$LAUNCH" "$G" "${run[@]}" --recompute --save "$TMP/cnn_ir" &&
            { same_dirs "$TMP/cnn_ir" "$TMP/cnn_s" && pass cnn_interleaved_recompute_equals_single_bitwise ||
                fail cnn_interleaved_recompute_equals_single_bitwise "$(close_dirs "$TMP/cnn_ir" "$TMP/cnn_s" 1e-5)"; }
        GS=$TMP/cnn_sel # selective: the chunks keep their linear and conv outputs
        if "$PDPLAN" models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 2 --microbatches 4 \
            --recompute selective -q -o "$GS" >"$TMP/sel.log" 2>&1 && grep -q 'recompute: selective' "$GS/plan.yaml" &&
            make -s -C "$GS" >"$TMP/make_sel.log" 2>&1; then
            expect_status 0 cnn_interleaved_selective_runs "$LAUNCH" "$GS" "${run[@]}" --save "$TMP/cnn_is" &&
                { same_dirs "$TMP/cnn_is" "$TMP/cnn_s" && pass cnn_interleaved_selective_equals_single_bitwise ||
                    fail cnn_interleaved_selective_equals_single_bitwise "$(close_dirs "$TMP/cnn_is" "$TMP/cnn_s" 1e-5)"; }
        else
            fail cnn_interleaved_selective_builds "$(tail -n 5 "$TMP/sel.log" "$TMP/make_sel.log" 2>/dev/null)"
        fi
        PDRT_INJECT_RECOMPUTE=skip "$LAUNCH" "$G" "${run[@]}" --recompute --save "$TMP/cnn_skip" >/dev/null 2>&1
        ! same_dirs "$TMP/cnn_skip" "$TMP/cnn_s" && pass recompute_comparison_has_teeth ||
            fail recompute_comparison_has_teeth "skipping the recomputation left the weights equal"
        expect_status 0 cnn_single_1f1b_runs "$LAUNCH" "$G" --single --schedule 1f1b "${run[@]}" --save "$TMP/cnn_1" &&
            { ! same_dirs "$TMP/cnn_i" "$TMP/cnn_1" && pass comparison_has_teeth || fail comparison_has_teeth; }
        # the rank binaries check the world they run in
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        OUTPUT=$(timeout 120 mpirun --oversubscribe -np 3 "$G/rank_0" --steps 1 --no-eval 2>&1) &&
            fail rank_needs_its_world "exit 0" ||
            { grep -q 'so it runs on 2 ranks' <<<"$OUTPUT" && pass rank_needs_its_world ||
                fail rank_needs_its_world "$OUTPUT"; }
    else
        fail cnn_builds "$(tail -n 5 "$TMP/make.log")"
    fi
fi

# a DAG, evaluation on
D=$TMP/dag
if "$PDPLAN" tests/data/models/tiny_dag.yaml -n 2 --schedule interleaved --microbatches 4 -q -o "$D" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$D" >"$TMP/make.log" 2>&1; then
    run=(--steps 40 --seed 3)
    expect_status 0 dag_single_runs "$LAUNCH" "$D" --single "${run[@]}" --save "$TMP/dag_s" &&
        expect_status 0 dag_interleaved_runs "$LAUNCH" "$D" "${run[@]}" --save "$TMP/dag_i" &&
        { same_dirs "$TMP/dag_i" "$TMP/dag_s" && pass dag_interleaved_equals_single_bitwise ||
            fail dag_interleaved_equals_single_bitwise "$(close_dirs "$TMP/dag_i" "$TMP/dag_s" 1e-5)"; }
    grep -q '"test_accuracy"' "$D/run/summary.json" && pass dag_evaluates || fail dag_evaluates "$(head -20 "$D/run/summary.json")"
else
    fail dag_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# 3 ranks, batch norm and dropout (tiny), segments of 10 steps (--eval-every) that end in a
# shorter batch of 4 > p, not a multiple of 3: that batch runs its forwards first, with room for
# all of them in flight
T=$TMP/tiny
if "$PDPLAN" tests/data/models/tiny.yaml -n 3 --schedule interleaved --microbatches 6 -q -o "$T" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$T" >"$TMP/make.log" 2>&1; then
    run=(--steps 25 --seed 5 --eval-every 10)
    expect_status 0 tiny_single_runs "$LAUNCH" "$T" --single "${run[@]}" --save "$TMP/tiny_s" &&
        expect_status 0 tiny_interleaved_runs "$LAUNCH" "$T" "${run[@]}" --save "$TMP/tiny_i" &&
        { same_dirs "$TMP/tiny_i" "$TMP/tiny_s" && pass tiny_3_ranks_short_batches_equal_single_bitwise ||
            fail tiny_3_ranks_short_batches_equal_single_bitwise "$(close_dirs "$TMP/tiny_i" "$TMP/tiny_s" 1e-5)"; }
else
    fail tiny_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# --schedule auto: 8 equal 4096-wide layers (67 MB of weights each) on 4 workers at 0.35 GB: 1f1b,
# 2bw (0.40 GB) and zero bubble do not fit, flush and gpipe do at (M + 3)/M of the work, interleaved with 2
# chunks at (2M + 3)/(2M): auto picks it and writes it; without the limit a schedule without
# a bubble (1f1b, 2bw, zb-h2) wins
{
    printf 'pd: 1\nname: equal8\ninput: [4096]\nclasses: 4096\nbatch: 8\ndataset: synthetic\nlayers:\n'
    for i in 0 1 2 3 4 5 6 7; do printf '  - {name: l%d, op: linear, out_features: 4096}\n' "$i"; done
} >"$TMP/equal8.yaml"
{
    printf 'pd_profile: 1\ndevice: unit\nbatch: 8\nlayers:\n'
    for i in 0 1 2 3 4 5 6 7; do printf '  - {name: l%d, forward_ms: 1, backward_ms: 2}\n' "$i"; done
} >"$TMP/equal8.prof.yaml"
auto=("$PDPLAN" "$TMP/equal8.yaml" -p "$TMP/equal8.prof.yaml" -n 4 -b 1e15 --schedule auto --explain --no-codegen)
if expect_status 0 auto_plans "${auto[@]}" --memory 3.5e8 -o "$TMP/auto"; then
    grep -q '^schedule: interleaved, 2 chunks per worker, M 32: 6.2813 ms per minibatch simulated.*faster than' <<<"$OUTPUT" &&
        grep -q '^schedule: "\?interleaved"\?$' "$TMP/auto/plan.yaml" && grep -q '^chunks: 2$' "$TMP/auto/plan.yaml" &&
        grep -q '^microbatches: 32$' "$TMP/auto/plan.yaml" && pass auto_chooses_interleaved_under_the_limit ||
        fail auto_chooses_interleaved_under_the_limit "$(grep '^schedule' <<<"$OUTPUT")"
fi
expect_status 0 auto_plans_unlimited "${auto[@]}" -o "$TMP/auto1" &&
    { grep -q '^schedule: interleaved at best 6.2813 ms .* slower than' <<<"$OUTPUT" &&
        ! grep -q '^schedule: "\?interleaved' "$TMP/auto1/plan.yaml" && pass auto_keeps_a_bubble_free_schedule_without_limit ||
        fail auto_keeps_a_bubble_free_schedule_without_limit "$(grep '^schedule' <<<"$OUTPUT")"; }

# refusals, each with its reason
refused() { # name pattern args...
    local name=$1 pat=$2; shift 2
    expect_status 2 "$name" "$PDPLAN" "$@" -q -o "$TMP/x" &&
        { grep -q -- "$pat" <<<"$OUTPUT" && pass "$name" || fail "${name}_says_why" "$OUTPUT"; }
}
refused chunks_without_interleaved '--chunks applies to --schedule interleaved' \
    models/fmnist_cnn.yaml -n 2 --schedule flush --chunks 2 --no-codegen
refused microbatches_not_multiple 'not a multiple of the 2 workers' \
    models/fmnist_cnn.yaml -n 2 --schedule interleaved --microbatches 5 --no-codegen
refused too_few_layers 'needs 16 stages of at least one layer each, but the model has 14 layers' \
    models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 8 --no-codegen
refused memory_over_limit 'over the limit of 2e+07 per worker' \
    models/fmnist_cnn.yaml -n 2 --schedule interleaved --memory 2e7 --no-codegen
refused one_worker 'needs at least 2 workers' \
    models/fmnist_cnn.yaml -n 1 --schedule interleaved --no-codegen
refused bad_chunks "not a whole number of chunks from 2" \
    models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 1 --no-codegen

# a plan of one stage per rank refuses to run interleaved
if "$PDPLAN" models/fmnist_cnn.yaml -n 2 -q -o "$TMP/run" >/dev/null 2>&1 && make -s -C "$TMP/run" >/dev/null 2>&1; then
    OUTPUT=$("$LAUNCH" "$TMP/run" --schedule interleaved --steps 1 --no-eval 2>&1) && fail runtime_refuses "exit 0" ||
        { grep -q 'runs the ranks of a plan made with pdplan --schedule interleaved' <<<"$OUTPUT" && pass runtime_refuses ||
            fail runtime_says_why "$OUTPUT"; }
else
    fail runtime_build "pdplan or make failed"
fi
finish
