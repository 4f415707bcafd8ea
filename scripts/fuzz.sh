#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer harnesses of pdplan's readers (fuzz/Makefile) and runs each
# target in turn, one at a time, for SECONDS seconds (default 600; `scripts/fuzz.sh 10` is a
# smoke run). Seeds come from fuzz/corpus/<target>/; new inputs collect in
# build/fuzz/corpus/<target>/ and crashes, leaks, timeouts and OOMs in build/fuzz/findings/<target>/.
# Prints one summary line per target (execs, coverage, corpus, findings); exits 1 on any finding.
# Usage: scripts/fuzz.sh [SECONDS] [target...]
#        scripts/fuzz.sh --coverage   (line/branch coverage of the readers by the corpora)
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--coverage" ]; then
    make -s -f fuzz/Makefile coverage >/dev/null || { echo "fuzz: coverage build failed"; exit 2; }
    declare -A files=(
        [fuzz_model_yaml]="planner/read/yaml_util.c planner/read/model_yaml.c planner/model/shapes.c planner/model/estimate.c planner/model/model_costgraph.c"
        [fuzz_profile_yaml]="planner/read/profile.c"
        [fuzz_cluster_yaml]="planner/read/cluster.c"
        [fuzz_graphtxt]="planner/read/graphtxt.c")
    for t in fuzz_model_yaml fuzz_profile_yaml fuzz_cluster_yaml fuzz_graphtxt; do
        raw=build/fuzz/cov_$t.profraw
        mkdir -p build/fuzz/corpus/$t
        LLVM_PROFILE_FILE=$raw build/fuzz/cov_$t -runs=0 build/fuzz/corpus/$t fuzz/corpus/$t \
            >/dev/null 2>&1
        llvm-profdata merge -o build/fuzz/cov_$t.profdata "$raw"
        echo "coverage: $t (regions, functions, lines, branches: total, missed, percent)"
        # shellcheck disable=SC2086
        llvm-cov report build/fuzz/cov_$t -instr-profile=build/fuzz/cov_$t.profdata ${files[$t]} |
            grep -E '^(planner/|TOTAL|[a-z_]+\.c)' | sed 's/^/  /'
    done
    exit 0
fi
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_model_yaml fuzz_profile_yaml fuzz_cluster_yaml fuzz_graphtxt)
make -s -f fuzz/Makefile -j2 >/dev/null || { echo "fuzz: build failed"; exit 2; }
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
    corpus=build/fuzz/corpus/$t findings=build/fuzz/findings/$t log=build/fuzz/$t.log
    mkdir -p "$corpus" "$findings"
    build/fuzz/$t -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -max_len=20000 \
        -dict=fuzz/$t.dict -print_final_stats=1 -artifact_prefix="$findings/" \
        "$corpus" "fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    n_corpus=$(find "$corpus" -type f | wc -l)
    n_found=$(find "$findings" -type f | wc -l)
    echo "fuzz: $t seconds=$secs execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=$n_corpus findings=$n_found rc=$rc"
    if [ "$rc" -ne 0 ] || [ "$n_found" -ne 0 ]; then
        status=1
        grep -E 'ERROR|SUMMARY|runtime error|invariant|Test unit written' "$log" | head -8 | sed 's/^/  | /'
    fi
done
exit $status
