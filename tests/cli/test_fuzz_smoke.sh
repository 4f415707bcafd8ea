#!/usr/bin/env bash
# test_fuzz_smoke.sh: the fuzzing regression inputs and a short fuzz run of pdplan's readers.
#  1. Every input in tests/data/fuzz_regress/<target>/ (each one a past fuzz finding) is given to
#     the sanitized pdplan in the role its target names: pdplan must either plan it (status 0) or
#     reject it with a diagnostic (status 2), without a sanitizer report, crash or hang.
#  2. When clang's libFuzzer runtime is present: the harnesses (fuzz/Makefile) replay those inputs
#     and their seed corpora with their invariant checks, then fuzz each target for a few seconds
#     (PD_FUZZ_SMOKE_SECONDS, default 6) from the seeds; any crash, leak or timeout fails.
#     Otherwise that part is SKIPped.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
REG=tests/data/fuzz_regress
TARGETS=(fuzz_model_yaml fuzz_profile_yaml fuzz_cluster_yaml fuzz_graphtxt fuzz_onnx)
SECS=${PD_FUZZ_SMOKE_SECONDS:-6}

# The pdplan arguments that feed FILE to TARGET's reader.
role_args() {
    local t=$1 f=$2 m
    case "$t" in
    fuzz_model_yaml) ARGS=("$f") ;;
    fuzz_profile_yaml)
        m=$(head -n 1 "$f" | sed -n 's/^# model: \([a-z0-9_]*\)$/\1/p')
        ARGS=("models/${m:-fmnist_cnn}.yaml" -p "$f") ;;
    fuzz_cluster_yaml) ARGS=(models/fmnist_cnn.yaml -c "$f") ;;
    fuzz_graphtxt) ARGS=("$f" -n 4) ;;
    fuzz_onnx) cp "$f" "$TMP/input.onnx"; ARGS=("$TMP/input.onnx") ;; # pdplan goes by the name
    esac
}

# 1. replay through pdplan
if [ ! -x "$PDPLAN" ]; then
    skip fuzz_regress_pdplan "$PDPLAN is not built"
else
    for t in "${TARGETS[@]}"; do
        for f in "$REG/$t"/*; do
            [ -f "$f" ] || continue
            name="fuzz_regress_${t#fuzz_}_$(basename "$f")"
            role_args "$t" "$f"
            rm -rf "$TMP/out"
            OUTPUT=$(timeout -k 5 60 "$PDPLAN" "${ARGS[@]}" --no-codegen -q -o "$TMP/out" 2>&1)
            rc=$?
            if printf '%s\n' "$OUTPUT" | grep -Eq 'Sanitizer|runtime error|Segmentation|Aborted'; then
                fail "$name" "sanitizer report"
            elif [ "$rc" -eq 2 ] && printf '%s\n' "$OUTPUT" | grep -q 'error: '; then
                pass "$name"
            elif [ "$rc" -eq 0 ]; then
                pass "$name"
            else
                fail "$name" "exit status $rc, wanted 0 or 2 with a diagnostic"
            fi
            [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && printf '%s\n' "$OUTPUT" | head -15 | sed 's/^/  | /'
        done
    done
fi

# the same bound on bandwidths given as flags (a denormal bandwidth made every time infinite)
if [ -x "$PDPLAN" ] && expect_status 2 flags_bandwidth_denormal "$PDPLAN" models/fmnist_cnn.yaml \
    -n 2 -b 1e-300 --no-codegen -q -o "$TMP/out"; then
    if printf '%s\n' "$OUTPUT" | grep -q 'pdplan: error: -b: bandwidth'; then
        pass flags_bandwidth_denormal
    else
        fail flags_bandwidth_denormal "no diagnostic"
    fi
fi

# 2. the harnesses
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
    >"$TMP/probe.c"
if ! command -v clang >/dev/null 2>&1 || ! clang -fsanitize=fuzzer "$TMP/probe.c" -o "$TMP/probe" >/dev/null 2>&1; then
    skip fuzz_smoke "clang with the libFuzzer runtime is not installed (make deps installs it)"
    finish
    exit 0
fi
if ! make -s -f fuzz/Makefile -j2 >"$TMP/build.log" 2>&1; then
    fail fuzz_build "make -f fuzz/Makefile failed"
    tail -20 "$TMP/build.log" | sed 's/^/  | /'
    finish
    exit 1
fi
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
for t in "${TARGETS[@]}"; do
    files=()
    for f in "$REG/$t"/* fuzz/corpus/"$t"/*; do [ -f "$f" ] && files+=("$f"); done
    if build/fuzz/"$t" -timeout=5 -rss_limit_mb=2048 "${files[@]}" >"$TMP/$t.replay" 2>&1; then
        pass "fuzz_replay_${t#fuzz_} (${#files[@]} inputs)"
    else
        fail "fuzz_replay_${t#fuzz_}" "a regression or seed input fails in the harness"
        grep -E 'ERROR|runtime error|invariant|Running:' "$TMP/$t.replay" | tail -6 | sed 's/^/  | /'
    fi
    mkdir -p "$TMP/corpus_$t" "$TMP/found_$t"
    build/fuzz/"$t" -max_total_time="$SECS" -timeout=5 -rss_limit_mb=2048 -max_len=20000 \
        -dict=fuzz/"$t".dict -print_final_stats=1 -artifact_prefix="$TMP/found_$t/" \
        "$TMP/corpus_$t" fuzz/corpus/"$t" >"$TMP/$t.log" 2>&1
    rc=$?
    execs=$(grep -o 'number_of_executed_units: *[0-9]*' "$TMP/$t.log" | grep -o '[0-9]*$')
    if [ "$rc" -eq 0 ] && [ -z "$(ls -A "$TMP/found_$t")" ]; then
        pass "fuzz_smoke_${t#fuzz_} (${SECS}s, ${execs:-?} execs)"
    else
        fail "fuzz_smoke_${t#fuzz_}" "libFuzzer found something (status $rc); input:"
        ls "$TMP/found_$t" | sed 's/^/  | /'
        for a in "$TMP/found_$t"/*; do
            [ -f "$a" ] && mkdir -p build/fuzz/smoke_findings && cp "$a" build/fuzz/smoke_findings/
        done
        grep -E 'ERROR|runtime error|invariant|SUMMARY' "$TMP/$t.log" | head -6 | sed 's/^/  | /'
    fi
done
finish
