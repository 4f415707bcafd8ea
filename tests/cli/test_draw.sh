#!/usr/bin/env bash
# test_draw.sh: the plan as a picture (issue 15): pdplan --draw writes plan.dot with one coloured
# cluster per stage and the cut edges labelled with their bytes, which Graphviz's dot renders
# (plan.svg, when dot is installed); --simulate writes the timeline of the first minibatches as
# timeline.svg (one row per rank, forwards, backwards and transfers as coloured bars); --explain
# says why a plan near data parallelism did or did not pipeline; --memory-budget caps the DP's
# states (a plan over the principal ideals, said so; exact: false unless the plan reaches the
# proven lower bound).
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1

if expect_status 0 draw_resnet50 "$PDPLAN" models/resnet50.yaml -n 4 --straight --draw \
    --simulate --no-codegen -o "$TMP/r50"; then
    d="$TMP/r50/plan.dot"
    clusters=$(grep -c '^  subgraph cluster_' "$d")
    cuts=$(grep -c 'color="#c0392b"' "$d")
    labels=$(grep -c 'label="stage [0-9]*: 1 replica, [0-9.]* ms, ' "$d")
    if [ "$clusters" = 4 ] && [ "$labels" = 4 ] && [ "$cuts" -ge 3 ]; then pass draw_dot
    else fail draw_dot "clusters $clusters, stage labels $labels, cut edges $cuts"; fi
    if command -v dot >/dev/null; then
        if [ -s "$TMP/r50/plan.svg" ] && [ "$(grep -c 'class="cluster"' "$TMP/r50/plan.svg")" = 4 ]
        then pass draw_svg
        else fail draw_svg "plan.svg missing or without 4 clusters"; fi
        if dot -Tsvg "$d" -o "$TMP/again.svg" 2>"$TMP/dot.err"; then pass draw_dot_renders
        else fail draw_dot_renders "$(head -3 "$TMP/dot.err")"; fi
    else
        skip draw_svg "Graphviz's dot is not installed (scripts/install-deps.sh)"
    fi
    t="$TMP/r50/timeline.svg"
    rows=$(grep -c '>rank [0-9]* (stage [0-9]*)</text>' "$t")
    fw=$(grep -c 'fill="#4c78a8" stroke' "$t")
    bw=$(grep -c 'fill="#f58518" stroke' "$t")
    if head -2 "$t" | grep -q '<svg' && [ "$rows" = 4 ] && [ "$fw" = "$bw" ] && [ "$fw" -ge 48 ] &&
        tail -1 "$t" | grep -q '</svg>'; then
        pass timeline_svg
    else
        fail timeline_svg "rows $rows, forwards $fw, backwards $bw"
    fi
fi

# data parallelism chosen (a fast link): --explain prices the best pipeline beside it
if expect_status 0 explain_dp "$PDPLAN" models/resnet50.yaml -p profiles/resnet50.v100.yaml \
    -n 4 -b 1e12 --no-codegen --explain -o "$TMP/e"; then
    case "$OUTPUT" in
    *"pipelining or not: data parallelism on 4 workers"*"the best pipeline: "*"data parallel: "*)
        pass explain_dp ;;
    *) fail explain_dp "no pipelining paragraph" ;;
    esac
fi

if expect_status 0 memory_budget "$PDPLAN" tests/data/graphtxt_cli/branchy.txt -n 4 -b 3.125e9 \
    --memory-budget 1 --no-codegen -o "$TMP/b"; then
    case "$OUTPUT" in
    *"memory budget"*"principal"*"equals a proven lower bound"*"optimal"*)
        # the fallback's plan reached the chain relaxation's bound (docs/planner.md)
        if grep -q '^exact: true' "$TMP/b/plan.yaml"; then pass memory_budget
        else fail memory_budget "proven optimal, but plan.yaml says not exact"; fi ;;
    *"memory budget"*"principal"*"not exact"*)
        if grep -q '^exact: false' "$TMP/b/plan.yaml"; then pass memory_budget
        else fail memory_budget "plan.yaml says exact"; fi ;;
    *) fail memory_budget "no warning: $OUTPUT" ;;
    esac
fi
expect_status 2 memory_budget_bad "$PDPLAN" tests/data/graphtxt_cli/branchy.txt -n 4 \
    --memory-budget -5 --no-codegen -o "$TMP/bad" && pass memory_budget_bad
finish
