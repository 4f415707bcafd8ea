#!/usr/bin/env bash
# test_hang.sh: issue 16's "no hang, no orphan" on a 2-stage pipeline of the small test model:
#  - the watchdog: one rank SIGSTOPped mid-training (rank 0 and rank 1 each, 5 rounds, the two
#    positions in two jobs side by side) ends the job within --hang-timeout 3 plus 5 s, non-zero,
#    pdlaunch's line naming the stopped rank as the peer waited for and the operation, one error
#    line per line, and nothing of the job left;
#  - the launcher owns its job: SIGTERM, SIGINT, SIGHUP and SIGKILL to pdlaunch itself (four jobs
#    side by side): within 10 s no mpirun and no rank of that job remains, exit 128+signal for
#    the signals pdlaunch forwards.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }
"$PDPLAN" tests/data/models/tiny.yaml -n 2 --straight -q -o "$TMP/g0" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$TMP/g0" >"$TMP/make.log" 2>&1 || { fail plan "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; finish; exit 1; }
for i in 1 2 3; do cp -r "$TMP/g0" "$TMP/g$i"; done # one folder per side-by-side job: its processes by path
train=(--data synthetic --synthetic-n 512 --steps 1000000 --log-every 1 --no-eval --no-trace --seed 3)

start_job() { # i extra...: starts pdlaunch on $TMP/g$i in the background (SIGINT not ignored), sets lp[i]
    local i=$1; shift
    env --default-signal=INT "$LAUNCH" "$TMP/g$i" "${train[@]}" --run-dir "$TMP/run$i" "$@" \
        >"$TMP/out$i" 2>"$TMP/err$i" &
    lp[$i]=$!
}
wait_training() { # i: until the job prints a loss (at most 20 s)
    for _ in $(seq 200); do grep -q loss "$TMP/out$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
job_pids() { pgrep -f "^$TMP/g$1/stage_|mpirun.* $TMP/g$1/stage_" 2>/dev/null; } # ranks and mpirun
rank_pid() { # i rank
    local p
    for p in $(pgrep -f "^$TMP/g$1/stage_"); do
        [ "$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')" = "$2" ] && echo "$p"
    done
}
gone_within() { # i seconds: 0 when pdlaunch and every process of job i are gone within the time
    local n=$(( $2 * 20 ))
    for _ in $(seq "$n"); do
        if ! kill -0 "${lp[$1]}" 2>/dev/null && [ -z "$(job_pids "$1")" ]; then return 0; fi
        sleep 0.05
    done
    return 1
}
cleanup_job() { local p; for p in $(job_pids "$1"); do kill -KILL "$p" 2>/dev/null; done; kill -KILL "${lp[$1]}" 2>/dev/null; }
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
one_line_each() { # file: every "pdrt: rank" begins its line (ranks' lines never interleave)
    [ "$(grep -o 'pdrt: rank' "$1" | wc -l)" = "$(grep -c '^pdrt: rank' "$1")" ]
}

# ---- the watchdog: a stopped rank, each position, 5 rounds ----
declare -A lp t0 victim
worst=0
for round in 1 2 3 4 5; do
    for pos in 0 1; do start_job "$pos" --hang-timeout 3; done
    for pos in 0 1; do
        victim[$pos]=""
        wait_training "$pos" && victim[$pos]=$(rank_pid "$pos" "$pos")
        [ -n "${victim[$pos]}" ] || continue
        sleep "0.$((RANDOM % 5))"
        t0[$pos]=$(date +%s.%N)
        kill -STOP "${victim[$pos]}"
    done
    for pos in 0 1; do
        name=stopped_rank${pos}_round$round
        if [ -z "${victim[$pos]}" ]; then
            fail "$name" "rank $pos of job $pos never trained: $(tail -3 "$TMP/err$pos" | tr '\n' '|')"; cleanup_job "$pos"; continue
        fi
        if ! gone_within "$pos" 8; then
            fail "$name" "still running $(secs "${t0[$pos]}") s after SIGSTOP of rank $pos"; cleanup_job "$pos"; continue
        fi
        took=$(secs "${t0[$pos]}")
        wait "${lp[$pos]}"; rc=$?
        other=$((1 - pos))
        line=$(grep -m1 '^pdlaunch: rank' "$TMP/err$pos")
        if [ "$rc" -ne 0 ] && grep -qE "^pdlaunch: rank $other \(stage $other\) failed: hang: no progress for [0-9.]+ s while waiting for a (receive|send) of (activations|gradients).*\(peer: rank $pos\)" <<<"$line" &&
           one_line_each "$TMP/err$pos"; then
            pass "$name"
            awk -v s="$took" -v w="$worst" 'BEGIN { exit !(s > w) }' && worst=$took
            [ "$round" = 1 ] && echo "  stopped rank $pos: job ended in ${took}s (exit $rc): ${line#pdlaunch: }"
        else
            fail "$name" "rc $rc after ${took}s: $(grep -E 'pdrt|pdlaunch' "$TMP/err$pos" | head -3 | tr '\n' '|')"
        fi
    done
done
echo "  slowest stop of 10: ${worst}s after SIGSTOP (--hang-timeout 3)"

# ---- the launcher owns its job: a signal to pdlaunch itself ----
declare -A want=([0]=TERM [1]=INT [2]=HUP [3]=KILL) code=([TERM]=143 [INT]=130 [HUP]=129 [KILL]=137)
for i in 0 1 2 3; do start_job "$i"; done
for i in 0 1 2 3; do
    sig=${want[$i]}
    if ! wait_training "$i" || [ -z "$(job_pids "$i")" ]; then
        fail "launcher_sig$sig" "never trained: $(tail -3 "$TMP/err$i" | tr '\n' '|')"; cleanup_job "$i"; continue
    fi
    t0[$i]=$(date +%s.%N)
    kill -"$sig" "${lp[$i]}"
done
for i in 0 1 2 3; do
    sig=${want[$i]}
    [ -n "${t0[$i]:-}" ] || continue
    if gone_within "$i" 10; then
        took=$(secs "${t0[$i]}")
        wait "${lp[$i]}"; rc=$?
        if [ "$rc" = "${code[$sig]}" ]; then
            pass "launcher_sig$sig"; echo "  SIGTERM..SIG$sig to pdlaunch: no mpirun or rank left after ${took}s (exit $rc)" | sed 's/SIGTERM\.\.//'
        else fail "launcher_sig$sig" "exit $rc, wanted ${code[$sig]}: $(tail -2 "$TMP/err$i" | tr '\n' '|')"; fi
    else
        fail "launcher_sig$sig" "10 s after SIG$sig still running: $(job_pids "$i" | tr '\n' ' ')"; cleanup_job "$i"
    fi
done
grep -q "the launcher (pdlaunch, pid [0-9]*) is gone: stopping" "$TMP/err3" && one_line_each "$TMP/err3" &&
    pass launcher_gone_named || fail launcher_gone_named "$(tail -3 "$TMP/err3" | tr '\n' '|')"
finish
