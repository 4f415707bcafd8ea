#!/usr/bin/env bash
# test_interleaved.sh: pdplan --schedule interleaved --chunks V end to end as far as it goes:
#  - fmnist_cnn on 2 workers with 2 chunks: plan.yaml records the schedule, `chunks: 2`, the
#    microbatches and stage s on rank s mod 2 with Megatron's warm-up of its rank; GENDIR/schedule
#    holds it (2 chunks per rank, actions naming their stage); --simulate times it;
#  - the price: plan.yaml's bottleneck is the slowest rank's sum of its chunks' times;
#  - a DAG (tiny_dag) plans too;
#  - bad combinations are diagnostics with exit status 2: --chunks without interleaved,
#    microbatches not a multiple of the workers, too few layers for p * v stages, the CUDA
#    backend, code generation (the runtime does not run interleaved yet), one worker; and the
#    stage binaries refuse --schedule interleaved with a clear message.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1

G=$TMP/cnn
if expect_status 0 plan_fmnist_interleaved "$PDPLAN" models/fmnist_cnn.yaml -n 2 --schedule interleaved \
    --chunks 2 --microbatches 4 --no-codegen --simulate -o "$G"; then
    pass plan_fmnist_interleaved
    y=$G/plan.yaml
    grep -q '^schedule: "\?interleaved"\?$' "$y" && grep -q '^chunks: 2$' "$y" && grep -q '^microbatches: 4$' "$y" &&
        grep -q '^workers: 2$' "$y" && pass plan_yaml_records_interleaved ||
        fail plan_yaml_records_interleaved "$(grep -E '^(schedule|chunks|microbatches|workers):' "$y")"
    # stage s on rank s mod 2; warm-up (p - r - 1) 2 + (v - 1) p: rank 0 4, rank 1 2
    got=$(awk '/^    ranks:/ {printf "%s", $2} /^    warmup:/ {printf "%s ", $2}' "$y")
    [ "$got" = "[0]4 [1]2 [0]4 [1]2 " ] && pass stages_mapped_round_robin || fail stages_mapped_round_robin "$got"
    # the price: the slowest rank's chunks summed
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
fi
expect_status 0 plan_dag_interleaved "$PDPLAN" tests/data/models/tiny_dag.yaml -n 2 --schedule interleaved \
    --no-codegen -q -o "$TMP/dag" && grep -q '^chunks: 2$' "$TMP/dag/plan.yaml" && pass plan_dag_interleaved

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
refused cuda_refused 'the CUDA executor does not run interleaved' \
    models/fmnist_cnn.yaml -n 2 --schedule interleaved --backend cuda --no-codegen
refused codegen_refused 'code generation and the runtime do not run interleaved plans yet' \
    models/fmnist_cnn.yaml -n 2 --schedule interleaved
refused one_worker 'needs at least 2 workers' \
    models/fmnist_cnn.yaml -n 1 --schedule interleaved --no-codegen
refused bad_chunks "not a whole number of chunks from 2" \
    models/fmnist_cnn.yaml -n 2 --schedule interleaved --chunks 1 --no-codegen

# the runtime refuses to run it
if "$PDPLAN" models/fmnist_cnn.yaml -n 2 -q -o "$TMP/run" >/dev/null 2>&1 && make -s -C "$TMP/run" >/dev/null 2>&1; then
    expect_status 2 runtime_refuses "$TMP/run/stage_0" --schedule interleaved --steps 1 &&
        { grep -q 'the runtime does not run interleaved plans yet' <<<"$OUTPUT" && pass runtime_refuses ||
            fail runtime_says_why "$OUTPUT"; }
else
    fail runtime_build "pdplan or make failed"
fi
finish
