#!/usr/bin/env bash
# test_bad_state.sh: issue 16's items 3-6, one check each: pdplan on endless and piped inputs, at
# extreme worker counts and its one worker limit; strict numeric options; --init with a NaN;
# --resume on another data set size and with changed options; debris of interrupted checkpoint
# writes; --save on a full disk (a tmpfs, where mount works); write errors naming the reason;
# launch.conf with CRLF line ends. (Watchdog, signals and Slurm: test_hang.sh, test_slurm.sh;
# corrupt newest checkpoint sets: test_reliability.sh.)
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s bin/pdplan build/libpdrt.a >/dev/null 2>&1 || { fail build "make failed"; finish; exit 1; }

# ---- pdplan: endless inputs end at the readers' limit, pipes plan ----
for dev in /dev/zero /dev/urandom; do
    t0=$(date +%s.%N)
    OUTPUT=$(timeout 5 bin/pdplan "$dev" -n 2 2>&1); rc=$?
    took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    if [ "$rc" -eq 2 ] && grep -q "$dev: error: file is larger than 67108864 bytes" <<<"$OUTPUT" &&
       awk -v s="$took" 'BEGIN { exit !(s < 1) }'; then pass "pdplan_${dev#/dev/}_refused_fast"; echo "  $dev: exit 2 in ${took}s"
    else fail "pdplan_${dev#/dev/}_refused_fast" "rc $rc after ${took}s: $OUTPUT"; fi
done
if bin/pdplan <(cat models/fmnist_cnn.yaml) -n 2 -o "$TMP/piped" -q --no-codegen >"$TMP/p.log" 2>&1 &&
   bin/pdplan models/fmnist_cnn.yaml -n 2 -o "$TMP/file" -q --no-codegen >>"$TMP/p.log" 2>&1 &&
   [ "$(grep -o 'fnv1a: "[0-9a-f]*"' "$TMP/piped/plan.yaml")" = "$(grep -o 'fnv1a: "[0-9a-f]*"' "$TMP/file/plan.yaml")" ] &&
   grep -q 'fnv1a: "[0-9a-f]\{16\}"' "$TMP/file/plan.yaml"; then pass pdplan_plans_a_pipe_with_the_files_hash
else fail pdplan_plans_a_pipe_with_the_files_hash "$(tail -3 "$TMP/p.log")"; fi

# ---- pdplan at extreme worker counts: the certificate holds; one limit, one message ----
cat >"$TMP/two.yaml" <<'EOF'
pd: 1
name: two
input: [4]
classes: 2
batch: 8
loss: softmax_cross_entropy
layers:
  - {name: fc1, op: linear, out_features: 8}
  - {name: fc2, op: linear, out_features: 2}
EOF
expect_status 0 certificate_at_16823_workers bin/pdplan "$TMP/two.yaml" -n 16823 -o "$TMP/w" -q --no-codegen &&
    { grep -q 'status: optimal' "$TMP/w/plan.yaml" && pass certificate_at_16823_workers || fail certificate_at_16823_workers "$(grep -A5 certificate: "$TMP/w/plan.yaml")"; }
for n in "2000000" "2000 2000"; do
    # shellcheck disable=SC2086
    expect_status 2 "worker_limit_${n// /x}" bin/pdplan "$TMP/two.yaml" -n $n &&
        { grep -q 'at most 1000000 workers in all' <<<"$OUTPUT" && pass "worker_limit_${n// /x}" || fail "worker_limit_${n// /x}" "$OUTPUT"; }
done
printf 'pd_cluster: 1\nlevels:\n  - {count: 2000, bandwidth: 1e9}\n  - {count: 2000, bandwidth: 1e9}\n' >"$TMP/big.yaml"
expect_status 2 worker_limit_cluster_file bin/pdplan "$TMP/two.yaml" -c "$TMP/big.yaml" &&
    { grep -q 'at most 1000000 workers in all' <<<"$OUTPUT" && pass worker_limit_cluster_file || fail worker_limit_cluster_file "$OUTPUT"; }

# ---- a 2-stage pipeline of the test model ----
G=$TMP/g
"$PDPLAN" tests/data/models/tiny.yaml -n 2 --straight -q -o "$G" >"$TMP/plan.log" 2>&1 && make -s -C "$G" >"$TMP/make.log" 2>&1 ||
    { fail plan "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; finish; exit 1; }
common=(--data synthetic --synthetic-n 512 --seed 5 --no-eval --no-trace)

# strict numeric options: refused before anything starts, exit 2, naming the option
for o in "--seed 1.5" "--seed nan" "--seed inf" "--seed 1e30" "--seed -1" "--log-every 1e10" "--synthetic-n 1e12" \
         "--steps 2.5" "--lr inf" "--lr 0" "--hang-timeout nan" "--epochs 1e9"; do
    set -- $o
    OUTPUT=$("$G/stage_0" "$@" 2>&1); rc=$?
    if [ "$rc" -eq 2 ] && grep -qE "^pdrt: error: $1: '$2' is (not a (finite|whole) number|out of range)" <<<"$OUTPUT" &&
       ! grep -qi 'backtrace\|AddressSanitizer\|runtime error' <<<"$OUTPUT"; then pass "option_refused_${1#--}_$2"
    else fail "option_refused_${1#--}_$2" "rc $rc: $OUTPUT"; fi
done
expect_status 2 option_refused_through_pdlaunch "$LAUNCH" "$G" --steps 2 --seed 1.5 "${common[@]}" &&
    { grep -q "seed: '1.5' is not a whole number" <<<"$OUTPUT" && pass option_refused_through_pdlaunch || fail option_refused_through_pdlaunch "$OUTPUT"; }

# --init with a NaN: refused naming the file and the index; --save not written
expect_status 0 save_for_init "$LAUNCH" "$G" --steps 4 "${common[@]}" --save "$TMP/w0" || { finish; exit 1; }
f=$(ls "$TMP/w0"/*.f32 | head -1)
cp -r "$TMP/w0" "$TMP/wnan"
python3 -c "import struct,sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[12:16]=struct.pack('<f', float('nan')); open(p,'wb').write(b)" "$TMP/wnan/$(basename "$f")"
OUTPUT=$("$LAUNCH" "$G" --steps 4 "${common[@]}" --init "$TMP/wnan" --save "$TMP/wout" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && grep -q "init: $TMP/wnan/$(basename "$f") holds a non-finite value (NaN) at index 3" <<<"$OUTPUT" &&
   [ ! -e "$TMP/wout" ]; then pass init_nan_refused
else fail init_nan_refused "rc $rc: $(grep -E 'pdrt|pdlaunch' <<<"$OUTPUT" | head -2)"; fi

# --save on a full disk: the reason named, no truncated file under a final name, no temporary file
mkdir -p "$TMP/full"
if mount -t tmpfs -o size=8k tmpfs "$TMP/full" 2>/dev/null; then
    OUTPUT=$("$LAUNCH" "$G" --steps 4 "${common[@]}" --save "$TMP/full/w" 2>&1); rc=$?
    whole=1
    for x in "$TMP/full/w"/*.f32; do [ -f "$x" ] || continue; cmp -s <(stat -c %s "$x") <(stat -c %s "$TMP/w0/$(basename "$x")") || whole=0; done
    if [ "$rc" -ne 0 ] && grep -q "cannot write $TMP/full/w/.*\.f32: No space left on device" <<<"$OUTPUT" && [ "$whole" = 1 ] &&
       [ -z "$(ls -A "$TMP/full/w" | grep '\.tmp$')" ]; then pass save_on_full_disk_atomic
    else fail save_on_full_disk_atomic "rc $rc whole $whole: $(ls -la "$TMP/full/w" | tail -3 | tr '\n' '|') $(grep pdrt <<<"$OUTPUT" | head -2)"; fi
    # a checkpoint on a full disk: the reason, and no temporary file left
    OUTPUT=$("$LAUNCH" "$G" --steps 4 "${common[@]}" --checkpoint-every 2 --checkpoint-dir "$TMP/full/ck" 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && grep -q "cannot write .*No space left on device" <<<"$OUTPUT" &&
       [ -z "$(find "$TMP/full/ck" -name '*.tmp')" ]; then pass checkpoint_on_full_disk_no_debris
    else fail checkpoint_on_full_disk_no_debris "rc $rc: $(find "$TMP/full/ck" | tr '\n' ' ') $(grep pdrt <<<"$OUTPUT" | head -2)"; fi
    umount "$TMP/full"
else
    skip save_on_full_disk_atomic "cannot mount a small tmpfs here (not root, or no CAP_SYS_ADMIN)"
fi

# a write error names the reason: trace.json's place is a folder
mkdir -p "$TMP/rd/trace.json"
OUTPUT=$("$LAUNCH" "$G" --steps 2 --data synthetic --synthetic-n 512 --no-eval --run-dir "$TMP/rd" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && grep -q "cannot write $TMP/rd/trace.json: Is a directory" <<<"$OUTPUT" &&
   [ -z "$(ls -A "$TMP/rd" | grep '\.tmp$')" ]; then pass write_error_names_reason
else fail write_error_names_reason "rc $rc: $(grep -E 'pdrt|pdlaunch' <<<"$OUTPUT" | head -2)"; fi

# ---- --resume: checkpoints at 4 and 8 of 8 steps (32 minibatches of 16 per epoch) ----
ck=(--checkpoint-every 4 --checkpoint-dir "$TMP/ck")
expect_status 0 checkpointed_run "$LAUNCH" "$G" --steps 8 "${common[@]}" "${ck[@]}" || { finish; exit 1; }
# another data set size: a clear reason instead of an internal check
OUTPUT=$("$LAUNCH" "$G" --steps 12 --data synthetic --synthetic-n 256 --seed 5 --no-eval --no-trace "${ck[@]}" --resume 2>&1); rc=$?
if [ "$rc" -ne 0 ] && grep -q "refused: written for 32 minibatches per epoch .*this run's data has 16: --data or --synthetic-n changed" <<<"$OUTPUT" &&
   ! grep -q 'check failed' <<<"$OUTPUT"; then pass resume_other_data_size_reason
else fail resume_other_data_size_reason "$(grep -E 'pdrt|pdlaunch' <<<"$OUTPUT" | head -3)"; fi
# changed options: a warning that lists them
expect_status 0 resume_changed_options "$LAUNCH" "$G" --steps 12 "${common[@]}" "${ck[@]}" --resume --lr 0.5 --no-shuffle &&
    { grep -qE "warning: --resume: this run differs from the checkpoint's: learning rate [0-9.e-]+ -> 0.5; shuffling on -> off \(--no-shuffle\)" <<<"$OUTPUT" &&
      pass resume_changed_options_warned || fail resume_changed_options_warned "$(grep -E 'resumed|warning' <<<"$OUTPUT")"; }
# an interrupted write's debris (a temporary file, a folder holding only it) goes at the next
# checkpoint, and so do the sets older than the one resumed from (two sets are kept)
mkdir -p "$TMP/ck/step-0000000099"
head -c 100 /dev/zero >"$TMP/ck/step-0000000099/.rank-1.ckpt.4242.tmp"
head -c 100 /dev/zero >"$TMP/ck/step-0000000012/.rank-0.ckpt.4243.tmp"
expect_status 0 resume_after_interrupted_write "$LAUNCH" "$G" --steps 16 "${common[@]}" "${ck[@]}" --resume &&
    { [ -z "$(find "$TMP/ck" -name '*.tmp')" ] && [ ! -e "$TMP/ck/step-0000000099" ] &&
      [ "$(ls "$TMP/ck" | tr '\n' ' ')" = "step-0000000012 step-0000000016 " ] &&
      pass checkpoint_debris_removed || fail checkpoint_debris_removed "$(find "$TMP/ck" | tr '\n' ' ')"; }

# ---- launch.conf with CRLF line ends: tolerated; a malformed line: refused naming it ----
cp -r "$G" "$TMP/crlf"
sed -i 's/$/\r/' "$TMP/crlf/launch.conf"
expect_status 0 launch_conf_crlf_tolerated "$LAUNCH" "$TMP/crlf" --steps 2 "${common[@]}" && pass launch_conf_crlf_tolerated
sed -i 's/ranks 1\r$/ranks one/' "$TMP/crlf/launch.conf"
expect_status 2 launch_conf_malformed_refused "$LAUNCH" "$TMP/crlf" --steps 2 "${common[@]}" &&
    { grep -q "launch.conf:[0-9]*: malformed stage line" <<<"$OUTPUT" && pass launch_conf_malformed_refused || fail launch_conf_malformed_refused "$OUTPUT"; }
finish
