#!/usr/bin/env bash
# test_plan.sh: pdplan's command line end to end: --help, golden plans of the bundled models
# (tests/golden/*.yaml), byte-identical reruns, bad arguments (exit 2, no folder), graph.txt
# input, --straight, --memory, the certificate threshold, the default output folder.
# Regenerate the golden files with: UPDATE_GOLDEN=1 bash tests/cli/test_plan.sh
# (or UPDATE_GOLDEN=vgg16 to regenerate only the cases whose name contains "vgg16")
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
GOLDEN=tests/golden
GT=tests/data/graphtxt_cli

if ! "$PDPLAN" --help >/dev/null 2>&1; then
    skip pdplan "$PDPLAN --help does not run (not built yet?)"
    finish
    exit
fi

# The certificate's solve time is the one non-deterministic line of plan.yaml.
mask() { sed -e 's/^\(  seconds: \).*/\1MASKED/' "$1"; }
# plan.yaml's value for a top-level or 4-space-indented key (first match)
val() { sed -n "s/^ *$2: //p" "$1" | head -1; }

# ---- --help, --version ----
if expect_status 0 help "$PDPLAN" --help; then
    missing=""
    for opt in --profile --device --cluster " -n " " -b " --memory --straight --compat \
               --schedule --backend " -o," --no-codegen --verify --explain " -q" --help \
               --version "exit status"; do
        case "$OUTPUT" in *"$opt"*) ;; *) missing="$missing '$opt'" ;; esac
    done
    if [ -z "$missing" ]; then pass help; else fail help "--help does not mention$missing"; fi
fi
if expect_status 0 version "$PDPLAN" --version; then
    case "$OUTPUT" in "pdplan "[0-9]*) pass version ;; *) fail version "got '$OUTPUT'" ;; esac
fi

# ---- golden plans: name | arguments (run from the repository root) ----
GOLDEN_CASES=(
    "fmnist_cnn.n2|models/fmnist_cnn.yaml -n 2"
    "fmnist_cnn.n4_straight|models/fmnist_cnn.yaml -n 4 --straight"
    "fmnist_cnn.2x2_compat|models/fmnist_cnn.yaml -n 2 2 -b 1e10 1e9 --compat pipedream"
    "vgg16.h200.n4|models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 -b 2.5e10"
    "vgg16.h200.4x4_compat|models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 4 -b 1e11 1.25e10 --compat pipedream"
    "alexnet.h200.n8|models/alexnet.yaml -p profiles/alexnet.h200.yaml -n 8 -b 1e10"
    "alexnet.h200.2x4_mem|models/alexnet.yaml -p profiles/alexnet.h200.yaml -n 2 4 -b 1e11 1e10 --memory 8e9"
    "resnet50.est_h200.n4|models/resnet50.yaml --device h200 -n 4 -b 1e11"
    "vgg16.h200.cluster-a|models/vgg16.yaml -p profiles/vgg16.h200.yaml -c clusters/cluster-a.yaml"
    "graphtxt.branchy.n4|$GT/branchy.txt -n 4 -b 3.125e9"
    "graphtxt.diamond.n3|tests/data/graphtxt/diamond.txt -n 3 -b 1e9"
    "graphtxt.chain.2x2_compat|$GT/chain.txt -n 2 2 -b 1e10 1e9 --compat pipedream"
)
mkdir -p "$TMP/golden"
for case_ in "${GOLDEN_CASES[@]}"; do
    name=${case_%%|*} args=${case_#*|}
    need=""
    for a in $args; do case "$a" in *.yaml|*.txt) [ -f "$a" ] || need="$need $a" ;; esac; done
    if [ -n "$need" ]; then skip "golden $name" "missing input$need"; continue; fi
    out="$TMP/golden/$name"
    # shellcheck disable=SC2086
    expect_status 0 "golden $name" "$PDPLAN" $args -o "$out" --no-codegen -q || continue
    mask "$out/plan.yaml" >"$out/masked.yaml"
    upd=${UPDATE_GOLDEN:-0}
    if [ "$upd" = 1 ] || { [ "$upd" != 0 ] && [[ "$name" == *"$upd"* ]]; }; then
        cp "$out/masked.yaml" "$GOLDEN/$name.yaml"
        pass "golden $name (updated)"
    elif [ ! -f "$GOLDEN/$name.yaml" ]; then
        fail "golden $name" "no $GOLDEN/$name.yaml (run UPDATE_GOLDEN=1 bash $0)"
    elif cmp -s "$out/masked.yaml" "$GOLDEN/$name.yaml"; then
        pass "golden $name"
    else
        fail "golden $name" "plan.yaml differs from $GOLDEN/$name.yaml"
        diff "$GOLDEN/$name.yaml" "$out/masked.yaml" | head -20 | sed 's/^/  | /'
    fi
done

# ---- params per stage: GPT-2 124M's stages sum to its count, the tied head's weight at wte ----
if expect_status 0 "params gpt2_124m" "$PDPLAN" models/gpt2_124m.yaml -n 8 --no-codegen -o "$TMP/gpt2"; then
    sum=$(awk '/^    params:/ { s += $2 } END { print s }' "$TMP/gpt2/plan.yaml")
    col=$(printf '%s\n' "$OUTPUT" | awk '$1 ~ /^[0-9]+$/ && NF >= 9 { s += $NF } END { print s }')
    if [ "$sum" = 124439808 ] && [ "$col" = 124439808 ]; then pass "params gpt2_124m"
    else fail "params gpt2_124m" "plan.yaml sums to $sum, the table to $col"; fi
fi

# ---- identical inputs give byte-identical output ----
# vgg16 (40 nodes) is above the certificate's default threshold: no timing at all in the file.
if [ -f profiles/vgg16.h200.yaml ]; then
    a=(models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 -b 2.5e10 --no-codegen)
    if expect_status 0 "deterministic run 1" "$PDPLAN" "${a[@]}" -o "$TMP/det1" &&
       expect_status 0 "deterministic run 2" "$PDPLAN" "${a[@]}" -o "$TMP/det2"; then
        if cmp -s "$TMP/det1/plan.yaml" "$TMP/det2/plan.yaml"; then pass "deterministic plan.yaml"
        else fail "deterministic plan.yaml" "two runs differ"; fi
    fi
else
    skip "deterministic plan.yaml" "no profiles/vgg16.h200.yaml"
fi
# a hierarchy's inner levels on 1 and 3 threads: the same plan.yaml, byte for byte
bash bench/gen_graphtxt.sh chain 200 >"$TMP/chain200.txt"
a=("$TMP/chain200.txt" -n 4 4 4 -b 1e11 2.5e10 1e10 --no-codegen -q)
if expect_status 0 "threads 1" "$PDPLAN" "${a[@]}" --threads 1 -o "$TMP/th1" &&
   expect_status 0 "threads 3" "$PDPLAN" "${a[@]}" --threads 3 -o "$TMP/th3"; then
    if cmp -s "$TMP/th1/plan.yaml" "$TMP/th3/plan.yaml"; then pass "--threads: same plan.yaml"
    else fail "--threads: same plan.yaml" "1 and 3 threads differ"; fi
fi
# and with the certificate (fmnist_cnn is small enough): identical but for its seconds
a=(models/fmnist_cnn.yaml -n 2 --no-codegen -q)
if expect_status 0 "deterministic certified 1" "$PDPLAN" "${a[@]}" -o "$TMP/detc1" &&
   expect_status 0 "deterministic certified 2" "$PDPLAN" "${a[@]}" -o "$TMP/detc2"; then
    if cmp -s <(mask "$TMP/detc1/plan.yaml") <(mask "$TMP/detc2/plan.yaml"); then
        pass "deterministic certified plan.yaml"
    else fail "deterministic certified plan.yaml" "two runs differ"; fi
fi

# ---- the plan says what it is ----
p="$TMP/detc1/plan.yaml"
if [ -f "$p" ]; then
    ok=1
    for key in "pd_plan: 1" "tool: pdplan" "model: fmnist_cnn" "estimated: true" \
               "cost_source: \"estimated for cpu\"" "bottleneck_ms:" "throughput:" \
               "data_parallel_ms:" "speedup_vs_data_parallel:" "exact:" "certificate:" \
               "solver: glpk" "status:" "objective:" "gap:" "seconds:" "replicas:" "ranks:" \
               "warmup:" "weight_versions:" "compute_ms:" "allreduce_ms:" "comm_ms:" \
               "time_ms:" "memory_bytes:" "fnv1a:" "schedule:" "batch: 64"; do
        grep -qF "$key" "$p" || { ok=0; fail "plan.yaml fields" "no '$key'"; }
    done
    # throughput = batch * 1000 / bottleneck_ms, to the last digit that %.17g can carry
    bn=$(val "$p" bottleneck_ms) tp=$(val "$p" throughput)
    awk -v b="$bn" -v t="$tp" 'BEGIN { r = 64000 / b; exit !(b > 0 && (t - r) / r < 1e-12 && (r - t) / r < 1e-12) }' \
        || { ok=0; fail "plan.yaml fields" "throughput $tp is not 64000/$bn"; }
    # the input hash is FNV-1a of the model file (64 bits, hex): check its shape
    grep -qE 'model: \{path: models/fmnist_cnn.yaml, fnv1a: "?[0-9a-f]{16}"?\}' "$p" \
        || { ok=0; fail "plan.yaml fields" "model path/hash line"; }
    [ "$ok" = 1 ] && pass "plan.yaml fields"
    # the small model is certified by default, and pdplan says so with the threshold
    if expect_status 0 "certificate by default" "$PDPLAN" models/fmnist_cnn.yaml -n 2 \
           --no-codegen -o "$TMP/cert"; then
        case "$OUTPUT" in
            *"run by default"*"<= "[0-9]*) pass "certificate by default" ;;
            *) fail "certificate by default" "no 'run by default ... <= N' line" ;;
        esac
        [ "$(val "$TMP/cert/plan.yaml" status)" != skipped ] && pass "certificate status" \
            || fail "certificate status" "status is skipped on a small model"
    fi
fi

# ---- the certificate threshold, both ways, on a 30-layer chain ----
bash bench/gen_graphtxt.sh chain 30 >"$TMP/chain30.txt"
if expect_status 0 "certificate threshold" "$PDPLAN" "$TMP/chain30.txt" -n 2 -o "$TMP/c30"; then
    case "$OUTPUT" in
        *"not run (30 nodes > "[0-9]*) pass "certificate not run above the threshold" ;;
        *) fail "certificate not run above the threshold" "no 'not run (30 nodes > N' line" ;;
    esac
    [ "$(val "$TMP/c30/plan.yaml" status)" = skipped ] && pass "certificate skipped in plan" \
        || fail "certificate skipped in plan" "status $(val "$TMP/c30/plan.yaml" status)"
fi
if expect_status 0 "--verify" "$PDPLAN" "$TMP/chain30.txt" -n 2 --verify -o "$TMP/c30v"; then
    case "$OUTPUT" in
        *"because of --verify"*) pass "--verify runs the certificate" ;;
        *) fail "--verify runs the certificate" "no 'because of --verify' line" ;;
    esac
    st=$(val "$TMP/c30v/plan.yaml" status)
    case "$st" in optimal|gap|timeout|infeasible) pass "--verify status ($st)" ;;
        *) fail "--verify status" "status '$st'" ;; esac
fi

# ---- bad arguments: exit 2, a diagnostic, no output folder ----
BAD_ARGS=(
    ""
    "models/fmnist_cnn.yaml models/vgg16.yaml"
    "models/fmnist_cnn.yaml --frobnicate"
    "models/fmnist_cnn.yaml -n"
    "models/fmnist_cnn.yaml -n 0"
    "models/fmnist_cnn.yaml -n -2"
    "models/fmnist_cnn.yaml -n two"
    "models/fmnist_cnn.yaml -n 2.5"
    "models/fmnist_cnn.yaml -n 2 -b nan"
    "models/fmnist_cnn.yaml -n 2 -b 0"
    "models/fmnist_cnn.yaml -n 2 -b -1e9"
    "models/fmnist_cnn.yaml -n 2 2 -b 1e9"
    "models/fmnist_cnn.yaml -b 1e9"
    "models/fmnist_cnn.yaml --memory"
    "models/fmnist_cnn.yaml --memory -1"
    "models/fmnist_cnn.yaml --memory NaN"
    "models/fmnist_cnn.yaml --compat tensorflow"
    "models/fmnist_cnn.yaml --schedule zb"
    "models/fmnist_cnn.yaml --backend tpu"
    "models/fmnist_cnn.yaml --device abacus"
    "models/fmnist_cnn.yaml -p"
    "models/fmnist_cnn.yaml -p $TMP/no_such_profile.yaml"
    "models/fmnist_cnn.yaml -c $TMP/no_such_cluster.yaml"
    "$TMP/no_such_model.yaml"
    "$GT/chain.txt -p profiles/vgg16.h200.yaml -n 2"
    "models/fmnist_cnn.yaml -n 2 --time-limit 0"
)
i=0
for args in "${BAD_ARGS[@]}"; do
    i=$((i + 1))
    out="$TMP/bad$i"
    # shellcheck disable=SC2086
    if expect_status 2 "bad args: pdplan $args" "$PDPLAN" $args -o "$out"; then
        if [ -e "$out" ]; then fail "bad args: pdplan $args" "created $out"
        elif ! printf '%s\n' "$OUTPUT" | grep -qE '(error|usage):'; then
            fail "bad args: pdplan $args" "no diagnostic"
        else pass "bad args: pdplan $args"; fi
    fi
done
# several errors are all reported in one run
if expect_status 2 "several diagnostics" "$PDPLAN" models/fmnist_cnn.yaml -n 0 -b x --bogus \
       -o "$TMP/several"; then
    n=$(printf '%s\n' "$OUTPUT" | grep -c 'error:')
    [ "$n" -ge 3 ] && pass "several diagnostics" || fail "several diagnostics" "$n errors shown"
fi
# an output folder that cannot be made is an error too (a file in the way)
touch "$TMP/afile"
expect_status 2 "output folder blocked" "$PDPLAN" models/fmnist_cnn.yaml -n 2 --no-codegen \
    -o "$TMP/afile/sub" && pass "output folder blocked"

# ---- graph.txt input with -n/-b: planning only ----
if expect_status 0 "graph.txt plans" "$PDPLAN" "$GT/branchy.txt" -n 2 2 -b 4e+09 1e9 \
       -o "$TMP/gt"; then
    p="$TMP/gt/plan.yaml"
    ok=1
    grep -q '^  kind: graph.txt$' "$p" || { ok=0; fail "graph.txt plans" "kind"; }
    grep -q '^throughput_unit: minibatches/s$' "$p" || { ok=0; fail "graph.txt plans" "unit"; }
    grep -q '^estimated: false$' "$p" || { ok=0; fail "graph.txt plans" "estimated"; }
    grep -q 'bandwidth: 4000000000}' "$p" || { ok=0; fail "graph.txt plans" "-b 4e+09"; }
    [ "$(ls -A "$TMP/gt")" = plan.yaml ] || { ok=0; fail "graph.txt plans" "wrote more than plan.yaml: $(ls -A "$TMP/gt")"; }
    [ "$ok" = 1 ] && pass "graph.txt plans"
fi

# ---- --straight: one replica per stage, every worker used ----
for n in 2 3 5; do
    if expect_status 0 "--straight -n $n" "$PDPLAN" "$GT/branchy.txt" -n $n --straight \
           -q -o "$TMP/st$n"; then
        p="$TMP/st$n/plan.yaml"
        reps=$(sed -n 's/^    replicas: //p' "$p" | sort -u | tr '\n' ' ')
        stages=$(grep -c '^  - id: ' "$p")
        if [ "$reps" = "1 " ] && [ "$stages" -eq "$n" ] && [ "$(val "$p" workers)" = "$n" ] &&
           grep -q '^straight: true$' "$p"; then
            pass "--straight -n $n"
        else
            fail "--straight -n $n" "replicas '$reps', $stages stages, workers $(val "$p" workers)"
        fi
    fi
done

# ---- --memory too small: the failing constraint is named, nothing written ----
if expect_status 2 "--memory too small" "$PDPLAN" models/fmnist_cnn.yaml -n 2 --memory 1000 \
       --no-codegen -o "$TMP/mem"; then
    if [ -e "$TMP/mem" ]; then fail "--memory too small" "created the folder"
    elif printf '%s\n' "$OUTPUT" | grep -qi 'memory'; then pass "--memory too small"
    else fail "--memory too small" "no message naming memory: $OUTPUT"; fi
fi

# ---- the optimizer's state in the memory model: plain SGD holds nothing beside the parameters
# and gradients, momentum SGD one velocity, AdamW two moments (one parameter-sized buffer each),
# and a memory limit between momentum's and AdamW's needs refuses AdamW alone ----
opt_mem() { # name, optimizer flow map: plans gpt_char with it on one worker, prints the stage's
             # memory_bytes and param_bytes (nothing when it does not plan)
    sed "s/^optimizer: .*/optimizer: $2/" models/gpt_char.yaml >"$TMP/opt_$1.yaml"
    "$PDPLAN" "$TMP/opt_$1.yaml" -n 1 --no-codegen -q -o "$TMP/opt_$1" >/dev/null 2>&1 &&
        sed -n 's/^    \(memory_bytes\|param_bytes\): //p' "$TMP/opt_$1/plan.yaml" | tr '\n' ' '
}
read -r m_sgd p_sgd < <(opt_mem sgd "{kind: sgd, lr: 0.01}")
read -r m_mom _ < <(opt_mem mom "{kind: sgd, lr: 0.01, momentum: 0.9}")
read -r m_adamw _ < <(opt_mem adamw "{kind: adamw, lr: 0.001, weight_decay: 0.1}")
if [ -n "$m_sgd" ] && [ -n "$p_sgd" ] && [ "$((m_mom - m_sgd))" = "$p_sgd" ] &&
   [ "$((m_adamw - m_mom))" = "$p_sgd" ]; then pass "memory counts the optimizer's buffers"
else fail "memory counts the optimizer's buffers" \
    "sgd $m_sgd, momentum $m_mom, adamw $m_adamw bytes; parameters $p_sgd bytes"; fi
if [ -n "$m_mom" ] &&
   "$PDPLAN" "$TMP/opt_mom.yaml" -n 1 --memory "$m_mom" --no-codegen -q -o "$TMP/opt_fit" \
       >/dev/null 2>&1 &&
   expect_status 2 "--memory refuses AdamW's moments" "$PDPLAN" "$TMP/opt_adamw.yaml" -n 1 \
       --memory "$m_mom" --no-codegen -q -o "$TMP/opt_nofit"; then
    if printf '%s\n' "$OUTPUT" | grep -qi memory; then pass "--memory refuses AdamW's moments"
    else fail "--memory refuses AdamW's moments" "no message naming memory: $OUTPUT"; fi
elif [ -z "$m_mom" ]; then fail "--memory refuses AdamW's moments" "no momentum plan"; fi

# ---- without -o: generated/<model>/ in the current folder; atomic (no temporary left) ----
mkdir -p "$TMP/cwd"
if (cd "$TMP/cwd" && "$PDPLAN" "$ROOT/models/fmnist_cnn.yaml" -n 2 --no-codegen -q) \
       >"$TMP/cwd.log" 2>&1; then
    if [ "$(ls -A "$TMP/cwd/generated/fmnist_cnn" 2>/dev/null)" = plan.yaml ]; then
        pass "default output folder"
    else fail "default output folder" "$(ls -AR "$TMP/cwd")"; fi
else
    fail "default output folder" "$(cat "$TMP/cwd.log")"
fi
mkdir -p "$TMP/cwd2/profiles/vgg16"
cp "$GT/chain.txt" "$TMP/cwd2/profiles/vgg16/graph.txt"
if (cd "$TMP/cwd2" && "$PDPLAN" profiles/vgg16/graph.txt -n 2 -q) >"$TMP/cwd2.log" 2>&1 &&
   [ -f "$TMP/cwd2/generated/vgg16/plan.yaml" ]; then
    pass "graph.txt output folder named after its folder"
else fail "graph.txt output folder named after its folder" "$(ls -AR "$TMP/cwd2")"; fi

# ---- without -n/-c: this machine's cores ----
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)
if expect_status 0 "default cluster" "$PDPLAN" "$GT/chain.txt" -q -o "$TMP/dc"; then
    w=$(sed -n 's/^  workers: //p' "$TMP/dc/plan.yaml")
    grep -q '^  cluster: default$' "$TMP/dc/plan.yaml" && [ "$w" = "$cores" ] &&
        pass "default cluster" || fail "default cluster" "cluster workers $w, cores $cores"
fi

# ---- code generation after the plan (model YAML, unless --no-codegen) ----
cg=(models/fmnist_cnn.yaml -n 2 --straight -q -o "$TMP/cg")
if "$PDPLAN" "${cg[@]}" >"$TMP/cg.log" 2>&1; then
    if [ -f "$TMP/cg/plan.yaml" ] && [ -f "$TMP/cg/stage_0.c" ] && [ -f "$TMP/cg/stage_1.c" ]; then
        pass "codegen writes the stages"
    else fail "codegen writes the stages" "$(ls -A "$TMP/cg")"; fi
    mv "$TMP/cg" "$TMP/cg1"
    "$PDPLAN" "${cg[@]}" >/dev/null 2>&1
    same=1
    for f in "$TMP/cg1"/*; do
        b=$(basename "$f")
        [ -f "$f" ] || continue
        if [ "$b" = plan.yaml ]; then cmp -s <(mask "$f") <(mask "$TMP/cg/$b") || same=0
        else cmp -s "$f" "$TMP/cg/$b" || same=0; fi
    done
    [ "$same" = 1 ] && pass "codegen deterministic" || fail "codegen deterministic" "files differ"
elif grep -q "not implemented" "$TMP/cg.log"; then
    skip "codegen writes the stages" "pd_codegen is a placeholder"
else
    fail "codegen writes the stages" "$(head -3 "$TMP/cg.log")"
fi
# graph.txt input never generates code, and --no-codegen writes only plan.yaml
expect_status 0 "--no-codegen" "$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q \
    --no-codegen -o "$TMP/nocg" &&
    { [ "$(ls -A "$TMP/nocg")" = plan.yaml ] && pass "--no-codegen" ||
      fail "--no-codegen" "$(ls -A "$TMP/nocg")"; }

# ---- -q prints no table; the table has the summary lines ----
expect_status 0 "-q" "$PDPLAN" models/fmnist_cnn.yaml -n 2 -q --no-codegen -o "$TMP/q" &&
    { [ -z "$OUTPUT" ] && pass "-q" || fail "-q" "printed: $OUTPUT"; }
if expect_status 0 table "$PDPLAN" models/fmnist_cnn.yaml -n 2 --no-codegen -o "$TMP/t"; then
    ok=1
    for s in "stage" "replicas" "bottleneck:" "samples/s" "data parallel:" "speedup" \
             "certificate:" "costs: estimated for cpu"; do
        case "$OUTPUT" in *"$s"*) ;; *) ok=0; fail table "no '$s'" ;; esac
    done
    [ "$ok" = 1 ] && pass table
fi

# ---- --explain adds text after the table ----
if expect_status 0 explain "$PDPLAN" "$GT/chain.txt" -n 2 --explain -o "$TMP/ex"; then
    plain=$("$PDPLAN" "$GT/chain.txt" -n 2 -o "$TMP/ex2" 2>&1)
    [ "${#OUTPUT}" -gt "${#plain}" ] && pass explain || fail explain "no more output than without"
fi

finish
