#!/usr/bin/env bash
# test_lattice.sh: over the state cap on one level without a memory limit, pdplan runs the
# lattice search over every ideal (planner/dp/lattice.c) and proves its plan optimal: on a small
# Inception-like DAG (bench/gen_graphtxt.sh inception 2 4 3: 515 ideals) capped at 40 states,
# where the family's plan alone is 0.6% above its bound, the plan equals the uncapped DP's,
# under both cost models; with a memory budget too small for the lattice it falls back, saying so.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
G=tests/data/graphtxt_cli/inception_2x4x3.txt

bottleneck() { sed -n 's/^bottleneck_ms: //p' "$1/plan.yaml"; }

for cm in default pipedream; do
    flags=(-n 8 -b 1e10)
    [ "$cm" = pipedream ] && flags+=(--compat pipedream)
    expect_status 0 "full_$cm" "$PDPLAN" "$G" "${flags[@]}" --no-codegen -o "$TMP/full_$cm" ||
        continue
    if expect_status 0 "lattice_$cm" "$PDPLAN" "$G" "${flags[@]}" --max-states 40 --no-codegen \
        -o "$TMP/cap_$cm"; then
        case "$OUTPUT" in
        *"lattice search over all 515"*"proved the plan"*"optimal"*) ;;
        *) fail "lattice_$cm" "no note of the lattice search: $OUTPUT"; continue ;;
        esac
        a=$(bottleneck "$TMP/full_$cm") b=$(bottleneck "$TMP/cap_$cm")
        if ! grep -q '^exact: true' "$TMP/cap_$cm/plan.yaml"; then
            fail "lattice_$cm" "plan.yaml says not exact"
        elif awk -v a="$a" -v b="$b" 'BEGIN { exit !(b <= a * (1 + 1e-9) && a <= b * (1 + 1e-9)) }'
        then pass "lattice_$cm"
        else fail "lattice_$cm" "bottleneck $b, the uncapped DP's $a"; fi
    fi
done

# the lattice's tables do not fit a budget of 1 byte: the family's plan, not exact, with its gap
if expect_status 0 lattice_budget "$PDPLAN" "$G" -n 8 -b 1e10 --max-states 40 \
    --memory-budget 1 --no-codegen -o "$TMP/small"; then
    case "$OUTPUT" in
    *"lattice search"*) fail lattice_budget "the lattice search ran within 1 byte" ;;
    *"not exact"*"gap"*)
        if grep -q '^exact: false' "$TMP/small/plan.yaml"; then pass lattice_budget
        else fail lattice_budget "plan.yaml says exact"; fi ;;
    *) fail lattice_budget "no warning: $OUTPUT" ;;
    esac
fi
finish
