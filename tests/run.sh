#!/usr/bin/env bash
# run.sh: runs every test (unit binaries under build/san/tests, then tests/cli/test_*.sh),
# echoes their PASS/FAIL/SKIP lines and ends with the total "N passed, N failed, N skipped".
# A binary or script that dies without its own closing line counts as one failure.
# Usage: tests/run.sh [substring]   (only tests whose file name contains the substring)
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export ROOT
export PDPLAN="$ROOT/build/san/pdplan"
# tests run make themselves: do not hand them the outer make's job server
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
filter="${1:-}"
passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() { # name, timeout seconds, command...
    local name=$1 limit=$2; shift 2
    echo "== $name"
    timeout -k 5 "$limit" "$@" >"$log" 2>&1
    local rc=$?
    grep -E '^(PASS|FAIL|SKIP) ' "$log"
    local p f s
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc (124 = timed out after ${limit}s)"
        tail -n 30 "$log" | sed 's/^/  | /'
        f=1
    elif [ "$f" -ne 0 ]; then
        grep -v -E '^(PASS|SKIP) ' "$log" | tail -n 40 | sed 's/^/  | /'
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

for t in build/san/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *"$filter"*) ;; *) continue ;; esac
    run_one "$(basename "$t")" 600 "$t"
done
for t in tests/cli/test_*.sh; do
    [ -f "$t" ] || continue
    case "$t" in *"$filter"*) ;; *) continue ;; esac
    run_one "$(basename "$t")" 900 bash "$t"
done
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
