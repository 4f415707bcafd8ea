#!/usr/bin/env bash
# test_diagnostics.sh: pdplan on every bad-input fixture in tests/data/bad/ (and on bad cluster
# flags) exits with status 2, prints "file:line:col: error:" diagnostics (flags: "pdplan: error:"),
# creates no output folder, and neither crashes nor hangs.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
BAD=tests/data/bad

if ! "$PDPLAN" --help >/dev/null 2>&1; then
    skip diagnostics "pdplan --help fails (pdplan not built yet)"
    finish
    exit 0
fi

# check NAME WANT_REGEX -- ARGS...: exit status 2, a diagnostic matching WANT_REGEX, no output.
check() {
    local name=$1 want=$2; shift 3
    rm -rf "$TMP/out"
    if ! expect_status 2 "$name" timeout -k 5 60 "$PDPLAN" "$@" -o "$TMP/out"; then return; fi
    if ! printf '%s\n' "$OUTPUT" | grep -Eq -- "$want"; then
        fail "$name" "no diagnostic matching '$want'"
        printf '%s\n' "$OUTPUT" | head -10 | sed 's/^/  | /'
        return
    fi
    if printf '%s\n' "$OUTPUT" | grep -Eq 'AddressSanitizer|runtime error|Segmentation'; then
        fail "$name" "sanitizer report"
        return
    fi
    if [ -e "$TMP/out" ]; then
        fail "$name" "created $TMP/out"
        return
    fi
    pass "$name"
}

# Every model fixture: a positioned error naming this very file.
for f in "$BAD"/*.yaml; do
    base=$(basename "$f" .yaml)
    case "$base" in profile_* | cluster_*) continue ;; esac
    check "diag_$base" "^$f:[0-9]+:[0-9]+: error: " -- "$f"
done
for f in "$BAD"/profile_*.yaml; do
    check "diag_$(basename "$f" .yaml)" "^$f:[0-9]+:[0-9]+: error: " -- \
        models/fmnist_cnn.yaml -p "$f"
done
for f in "$BAD"/cluster_*.yaml; do
    check "diag_$(basename "$f" .yaml)" "^$f:[0-9]+:[0-9]+: error: " -- \
        models/fmnist_cnn.yaml -c "$f"
done
for f in "$BAD"/graph_*.txt; do
    check "diag_$(basename "$f" .txt)" "^$f:[0-9]+:[0-9]+: error: " -- "$f" -n 4 -b 1e9
done

# Several errors at once: every one of them is printed.
check diag_several_at_once "^$BAD/several_errors.yaml:10:42: error: " -- "$BAD/several_errors.yaml"
n=$(printf '%s\n' "$OUTPUT" | grep -c "^$BAD/several_errors.yaml:[0-9]*:[0-9]*: error: ")
if [ "$n" -eq 5 ]; then pass diag_several_count; else fail diag_several_count "$n errors, want 5"; fi

# Bad cluster flags.
check flags_zero_workers "^pdplan: error: .*0 workers" -- models/fmnist_cnn.yaml -n 4 0
check flags_negative_workers "^pdplan: error: " -- models/fmnist_cnn.yaml -n -2
check flags_zero_bandwidth "^pdplan: error: " -- models/fmnist_cnn.yaml -n 4 -b 0
check flags_negative_bandwidth "^pdplan: error: " -- models/fmnist_cnn.yaml -n 4 -b -1e9
check flags_nan_bandwidth "^pdplan: error: " -- models/fmnist_cnn.yaml -n 4 -b nan
check flags_zero_threads "^pdplan: error: --threads" -- models/fmnist_cnn.yaml --threads 0
check flags_fraction_threads "^pdplan: error: --threads: '1.5' is not a whole number" -- models/fmnist_cnn.yaml --threads 1.5
check flags_count_mismatch "^pdplan: error: " -- models/fmnist_cnn.yaml -n 4 4 -b 1e9
finish
