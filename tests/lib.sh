# lib.sh: helpers for the shell tests in tests/cli. Source it; then call
#   pass NAME | fail NAME [why] | skip NAME why
#   expect_status WANT NAME cmd...   (runs cmd, output in $OUTPUT, checks its exit status)
#   same_dirs A B                    (every A/*.f32 is in B with the same bytes; one at least)
# and finish with `finish`. $PDPLAN is the sanitized pdplan, $ROOT the repository.
: "${ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${PDPLAN:=$ROOT/build/san/pdplan}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n_fail=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; n_fail=$((n_fail + 1)); }
skip() { echo "SKIP $1: $2"; }
expect_status() {
    local want=$1 name=$2; shift 2
    OUTPUT=$("$@" 2>&1); local rc=$?
    if [ "$rc" -eq "$want" ]; then return 0; fi
    fail "$name" "exit status $rc, wanted $want"
    printf '%s\n' "$OUTPUT" | head -20 | sed 's/^/  | /'
    return 1
}
finish() { [ "$n_fail" -eq 0 ]; }
same_dirs() { # a b: every file of a exists in b with the same bytes (batch-norm stats included)
    local f n=0
    for f in "$1"/*.f32; do
        [ -f "$f" ] || return 1
        cmp -s "$f" "$2/$(basename "$f")" || return 1
        n=$((n + 1))
    done
    [ "$n" -gt 0 ]
}
