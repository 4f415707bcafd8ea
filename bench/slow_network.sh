#!/usr/bin/env bash
# slow_network.sh: runs fmnist_cnn's 2-stage PipeDream pipeline across two "hosts" joined by a
# real but deliberately slow network, and prints the measured times beside the simulator's
# prediction for the same cluster (issue 7, "Validation against real runs", item 2).
#
# The two hosts are two network namespaces made here, joined by a veth pair (10.99.0.1 and
# 10.99.0.2, addresses that exist only inside those namespaces) whose two ends are shaped with
# tc's token bucket filter (tbf, one per direction) to 1 Gbit/s, then 100 Mbit/s (and, as a
# baseline, left unshaped). MPI runs over TCP only (btl self,tcp on the veth); mpirun runs inside
# the first namespace and starts the second host's daemon through a launch agent (a small script
# written here, set as plm_rsh_agent) that runs `ip netns exec <ns> sh -c ...` instead of ssh.
# The hostfile names the hosts by their veth addresses, so /etc/hosts is never touched.
#
# Per link: a cluster YAML for the link (one level of 2 workers at the link's bandwidth), the plan
# pdplan makes for it from a pdprof profile measured here, the simulator's time per minibatch
# (pdplan --simulate) and the measured one (train_s / steps from run/summary.json, STEPS steps,
# ROUNDS times; the minimum is the run least disturbed by the machine's other load), time per epoch (937 minibatches of 64, measured per minibatch x 937; predicted
# steady x 937 + warm-up/drain), and time to 85% test accuracy: measured at 1 Gbit/s with
# --epochs 1 --target-accuracy 0.85, scaled to the other links by their epoch times (marked as
# scaled). 2-way data parallelism runs when the runtime can generate replicated stages (detected
# by trying codegen); otherwise its simulated time is printed alone.
#
# Needs root (CAP_NET_ADMIN), iproute2 with netns, tc with tbf, OpenMPI. Cleans up on any exit:
# kills what still runs in its namespaces, deletes them (the veth pair goes with them) and its
# temporary folder. Takes about 5 minutes.
# TTA=all: also measure the time to 85% test accuracy for both the pipeline and data parallelism
# on every shaped link (up to 3 epochs each; adds about 10-15 minutes).
# Usage: bench/slow_network.sh [STEPS (unshaped, 1 Gbit/s; default 100)] [STEPS_100M (default 50)]
#                              [ROUNDS (runs per configuration; default 3)]
set -eu
cd "$(dirname "$0")/.."
source bench/lib.sh # calibrate
steps_1g=${1:-100}
steps_100m=${2:-50}
rounds=${3:-3}
model=models/fmnist_cnn.yaml
per_epoch=937 # 60000 training samples / 64, rounded down (the runtime drops the short tail)

die() { echo "slow_network: $*" >&2; exit 1; }
# try CMD...: runs a setup command; on failure says exactly which command failed and its error
try() {
    local err
    err=$("$@" 2>&1) || die "this environment prevents the experiment: \`$*\` failed: ${err:-exit status $?}"
}
[ "$(id -u)" -eq 0 ] || die "needs root (CAP_NET_ADMIN) for network namespaces and tc"
for c in ip tc mpirun; do command -v "$c" >/dev/null || die "needs $c"; done

make -s -j2 bin/pdplan bin/pdprof >/dev/null
work=$(mktemp -d)
nsa=pdsn$$a nsb=pdsn$$b # interface names: at most 15 characters
cleanup() {
    local ns p
    for ns in "$nsa" "$nsb"; do
        [ -e "/run/netns/$ns" ] || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp bin/pdplan bin/pdprof scripts/pdlaunch "$work/" # private copies: others edit them meanwhile

# ---- the two hosts and the link
try ip netns add "$nsa"
try ip netns add "$nsb"
try ip link add "$nsa" type veth peer name "$nsb"
try ip link set "$nsa" netns "$nsa"
try ip link set "$nsb" netns "$nsb"
try ip -n "$nsa" addr add 10.99.0.1/24 dev "$nsa"
try ip -n "$nsb" addr add 10.99.0.2/24 dev "$nsb"
for ns in "$nsa" "$nsb"; do
    try ip -n "$ns" link set "$ns" up
    try ip -n "$ns" link set lo up
done
# shape RATE: tbf on both ends (each shapes its egress: one per direction); "none" removes it
shape() {
    local ns burst
    for ns in "$nsa" "$nsb"; do
        ip netns exec "$ns" tc qdisc del dev "$ns" root 2>/dev/null || true
        [ "$1" = none ] && continue
        # burst: at least one 64 KiB GSO segment; about 2 ms of traffic at the rate
        case $1 in 1gbit) burst=256kb ;; *) burst=64kb ;; esac
        try ip netns exec "$ns" tc qdisc add dev "$ns" root tbf rate "$1" burst "$burst" latency 100ms
    done
}

cat >"$work/agent" <<EOF
#!/bin/sh
# launch agent (plm_rsh_agent): "ssh HOST COMMAND" becomes "enter HOST's namespace, run COMMAND"
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
case \$host in
10.99.0.1) ns=$nsa ;;
10.99.0.2) ns=$nsb ;;
*) echo "slow_network agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
EOF
chmod +x "$work/agent"
printf '10.99.0.1 slots=1\n10.99.0.2 slots=1\n' >"$work/hostfile"

# goodput RATE_LABEL: TCP throughput from host a to host b over the link now, in bytes/s
goodput() {
    command -v python3 >/dev/null || { echo 0; return; }
    cat >"$work/tput.py" <<'EOF'
import socket, sys, time
if sys.argv[1] == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.99.0.2", 5599)); s.listen(1); c, _ = s.accept()
    while c.recv(1 << 20): pass
    c.close()
else:
    s = socket.create_connection(("10.99.0.2", 5599)); buf = b"x" * (1 << 20); n = int(sys.argv[2])
    t = time.time()
    for _ in range(n): s.sendall(buf)
    s.shutdown(socket.SHUT_WR); s.recv(1); print("%.4g" % (n * len(buf) / (time.time() - t)))
EOF
    ip netns exec "$nsb" python3 "$work/tput.py" server &
    local srv=$! mb=$2
    sleep 0.5
    ip netns exec "$nsa" python3 "$work/tput.py" client "$mb"
    wait "$srv"
}

# ---- profile: pdprof --train, the model trained as one stage, every layer timed inside training
tdata=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && tdata=(--data /usr/share/datasets/fashion-mnist)
PDC_ROOT=$PWD "$work/pdprof" "$model" --train --steps 150 "${tdata[@]}" -o "$work/profile.yaml" >"$work/prof.log" 2>&1 ||
    { cat "$work/prof.log" >&2; die "pdprof --train failed"; }

# run GEN LOG ARGS...: the pipeline across the two hosts
run() {
    local gen=$1 log=$2; shift 2
    ip netns exec "$nsa" env OMPI_MCA_plm_rsh_agent="$work/agent" OMPI_MCA_btl=self,tcp \
        OMPI_MCA_btl_tcp_if_include=10.99.0.0/24 OMPI_MCA_oob_tcp_if_include=10.99.0.0/24 \
        "$work/pdlaunch" "$gen" --hostfile "$work/hostfile" "$@" >"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "the run of $gen failed (log above)"; }
}
json() { awk -v k="\"$2\"" '$1 == k":" { gsub(/[",]/, "", $2); print $2; exit }' "$1"; }
# measure GEN STEPS ROUNDS KIND CLUSTER: runs GEN ROUNDS times; prints per run "MS:CAL", the
# measured ms per minibatch and the simulator's prediction from the profile calibrated to that
# run's own compute (KIND pipeline: the --straight plan's time, "moved" if the calibrated profile
# moves the cut; KIND dp: the simulated data-parallel time), then, from the last run, each
# stage's measured and planned compute per minibatch ("c=M/P,M/P")
measure() {
    local gen=$1 n=$2 rounds=$3 kind=$4 cl=$5 i out="" ms cal
    for i in $(seq 1 "$rounds"); do
        run "$gen" "$gen.run$i.log" --steps "$n" --no-eval --no-trace --log-every "$n"
        ms=$(awk -v n="$n" '$1 == "\"train_s\":" { gsub(/,/, "", $2); printf "%.1f", $2 * 1000 / n }' "$gen/run/summary.json")
        calibrate "$work/cal.yaml" "$gen/plan.yaml" "$gen/run/summary.json" "$work/profile.yaml"
        rm -rf "$work/cal"
        timeout 60 "$work/pdplan" "$model" -p "$work/cal.yaml" -c "$cl" --straight --simulate --no-codegen -o "$work/cal" \
            >"$work/cal.plan" 2>&1 || { cat "$work/cal.plan" >&2; die "pdplan (calibrated) failed"; }
        if [ "$kind" = dp ]; then
            cal=$(sim "$work/cal.plan" | awk '{ printf "%.1f", $3 }')
        elif [ "$(awk '/^    layers:/ { print; exit }' "$work/cal/plan.yaml")" != "$(awk '/^    layers:/ { print; exit }' "$gen/plan.yaml")" ]; then
            cal=moved
        else
            cal=$(sim "$work/cal.plan" | awk -v n="$n" '{ printf "%.1f", ($1 * n + $2) / n }')
        fi
        out+="$ms:$cal "
    done
    # (data parallelism's plan comes from the skewed profile: its planned compute means nothing)
    out+="$(awk -v kind="$kind" '/"measured_compute_ms"/ { match($0, /"predicted_compute_ms": [^,]*/); p = substr($0, RSTART + 24, RLENGTH - 24)
                 if (kind == "dp") p = "-"
                 match($0, /"measured_compute_ms": [^,]*/); m = substr($0, RSTART + 23, RLENGTH - 23)
                 if (match($0, /"slowest_replica_compute_ms": [^,]*/)) m = substr($0, RSTART + 30, RLENGTH - 30)
                 printf "%s%.1f/%s", (k++ ? "," : "c="), m, p == "-" ? p : sprintf("%.1f", p) }' "$gen/run/summary.json")"
    echo "$out"
}
# sim GEN.plan: "steady_ms extra_ms dp_simulated_ms" from pdplan --simulate's output; extra is
# the simulated run's makespan minus its minibatches x steady (warm-up and drain), so that a run of
# N minibatches takes steady x N + extra (the simulator's bubble also counts steady-state idle)
sim() {
    awk '/^simulated/ { n++; if (n == 1) { c = $7; t = $10 } } n == 1 && /steady state/ { s = $3 }
         /data parallel, ms/ { d = $5 } END { print s, t - c * s, d }' "$1"
}
# report LABEL STEADY BUBBLE STEPS MS:CAL... c=...: measured against simulated ms per minibatch
# (from the profile, and calibrated to each run's compute) and per epoch; leaves the minimum
# measured in $work/last_mean
report() {
    local label=$1 steady=$2 extra=$3 n=$4; shift 4
    echo "$steady $extra $n $*" | awk -v e="$per_epoch" -v l="$label" -v mean="$work/last_mean" '{
        k = 0; sum = 0; lo = 1e30; hi = 0; list = ""; cl = ""; worst = 0
        for (i = 4; i <= NF; i++) { if ($i ~ /^c=/) { comp = substr($i, 3); continue }
            split($i, P, ":"); k++; sum += P[1]; if (P[1] < lo) lo = P[1]; if (P[1] > hi) hi = P[1]
            list = list (k > 1 ? ", " : "") P[1]
            if (P[2] == "moved") { cl = cl (k > 1 ? ", " : "") "cut moved"; continue }
            err = (P[2] / P[1] - 1) * 100; a = err < 0 ? -err : err; if (a > worst) worst = a
            cl = cl (k > 1 ? ", " : "") sprintf("%.1f (%+.1f%%)", P[2], err) }
        m = sum / k; p = ($1 * $3 + $2) / $3
        printf "  %-24s measured %s ms/minibatch (min %.1f, mean %.1f, spread %.0f%%)\n", l, list, lo, m, (hi / lo - 1) * 100
        printf "  %-24s simulated from the profile %.1f: %+.1f%% against the min, %+.1f%% against the mean\n", "", p, (p / lo - 1) * 100, (p / m - 1) * 100
        printf "  %-24s simulated with each run'"'"'s own compute: %s; worst %.1f%%\n", "", cl, worst
        printf "  %-24s compute per stage measured/profiled %s ms; epoch: measured %.1f s (scaled from %d steps), simulated %.1f s\n", "", comp, m * e / 1000, $3, ($1 * e + $2) / 1000
        print lo > mean }'
}

# data parallelism: pdplan has no flag to force one stage on 2 replicas, so it plans from a copy
# of the profile whose first layer costs about 1 s: no 2-stage cut can then balance, and the 2-worker
# plan is 1 stage x 2 replicas. The generated code of a 1-stage plan depends on neither the
# costs nor the bandwidth, so the same binaries run on every link; the times it is compared
# with are the simulator's data-parallel figures from the real profile.
dpgen=$work/gen_dp
# (pdplan at c33de01 sometimes plans forever on such a profile: 100 ms and 3000 ms hang, 500 ms
# and 1000 ms do not; hence a timeout and a few values)
dp_ok=0 dp_why="the 2-worker plan is not 1 stage x 2 replicas"
for skew in 1000 500 2000 700; do
    awk -v v="$skew" '/forward_ms/ && !done { sub(/forward_ms: [^,]*/, "forward_ms: " v); done = 1 } { print }' \
        "$work/profile.yaml" >"$work/skewed.yaml"
    rm -rf "$dpgen"
    timeout 20 "$work/pdplan" "$model" -p "$work/skewed.yaml" -n 2 -b 1e10 -q -o "$dpgen" >"$dpgen.plan" 2>&1 ||
        { dp_why="pdplan on the skewed profile failed or ran past 20 s"; continue; }
    if [ "$(grep -c '^stage ' "$dpgen/launch.conf")" = 1 ] &&
        awk '/replicas:/ && $2 == 2 { f = 1 } END { exit !f }' "$dpgen/plan.yaml"; then
        make -s -C "$dpgen" >/dev/null 2>&1 || die "building $dpgen failed"
        dp_ok=1
        break
    fi
    dp_why=$(grep -m1 error "$dpgen.plan" || echo "the 2-worker plan is not 1 stage x 2 replicas")
done

echo "slow_network: $model across two network namespaces over a tc-shaped veth, MPI over TCP"
echo "  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); profile: pdprof --train (inside training)"
echo "  simulated per minibatch = (steady x steps + warm-up/drain extra) / steps; error = simulated / measured - 1"
ttt_1g=""
for link in none 1gbit 100mbit; do
    case $link in
    none) bw="" steps=$steps_1g label="unshaped veth" mb=400 ;;
    1gbit) bw=1.25e8 steps=$steps_1g label="1 Gbit/s" mb=100 ;;
    100mbit) bw=1.25e7 steps=$steps_100m label="100 Mbit/s" mb=12 ;;
    esac
    shape "$link"
    gp=$(goodput "$link" "$mb")
    [ -n "$bw" ] || bw=$gp # unshaped: plan for the measured goodput
    {
        echo "# two hosts of one CPU worker each, joined by a veth shaped to $label (bytes/s)"
        echo "pd_cluster: 1"
        echo "name: slownet-$link"
        echo "device: cpu"
        echo "memory_per_worker: 0"
        echo "levels:"
        echo "  - {count: 2, bandwidth: $bw}"
    } >"$work/cluster_$link.yaml"
    gen=$work/gen_$link
    timeout 60 "$work/pdplan" "$model" -p "$work/profile.yaml" -c "$work/cluster_$link.yaml" --straight --simulate \
        -o "$gen" >"$gen.plan" 2>&1 || { cat "$gen.plan" >&2; die "pdplan failed"; }
    read -r steady extra dp_sim < <(sim "$gen.plan")
    cut=$(awk '$1 == "0" && NF >= 7 { print $2 }' "$gen.plan")
    make -s -C "$gen" >/dev/null 2>&1 || die "building $gen failed"
    echo
    echo "$label: TCP goodput $(awk -v g="$gp" 'BEGIN { printf "%.1f Mbit/s", g * 8 / 1e6 }') one way; cluster YAML: 2 workers at $bw B/s"
    # shellcheck disable=SC2046 # measure prints one word per run, split on purpose
    report "pipeline ($cut | rest)" "$steady" "$extra" "$steps" $(measure "$gen" "$steps" "$rounds" pipeline "$work/cluster_$link.yaml")
    pipe_ms=$(cat "$work/last_mean")
    if [ "$dp_ok" = 1 ]; then
        # (pdplan --simulate models the cpu runtime's all-reduce: gather to replica 0, sum,
        # broadcast, 2P/B per update for 2 replicas)
        # shellcheck disable=SC2046
        report "2-way data parallel" "$dp_sim" 0 "$steps" $(measure "$dpgen" "$steps" "$rounds" dp "$work/cluster_$link.yaml")
    else
        echo "  2-way data parallel: simulated $dp_sim ms/minibatch; not run: $dp_why"
    fi
    if [ "$link" = none ]; then
        base_ms=$pipe_ms base_sim=$steady
    else
        awk -v m="$pipe_ms" -v b="$base_ms" -v s="$steady" -v bs="$base_sim" 'BEGIN {
            printf "  %-24s pipeline: measured %+.1f ms/minibatch, simulated %+.1f\n", "added by the link", m - b, s - bs }'
    fi
    if [ "${TTA:-}" = all ] && [ "$link" != none ]; then
        # measured time to 85% test accuracy, PipeDream's pipeline and data parallelism alike
        for which in pipeline dp; do
            g=$gen; [ "$which" = dp ] && g=$dpgen
            [ "$which" = dp ] && [ "$dp_ok" != 1 ] && { echo "  time to 85%, data parallel: not run: $dp_why"; continue; }
            run "$g" "$g.tta.log" --epochs 3 --target-accuracy 0.85 --no-trace --log-every 1000
            t=$(json "$g/run/summary.json" time_to_target_s)
            a=$(json "$g/run/summary.json" test_accuracy)
            w=$(json "$g/run/summary.json" wall_s)
            if [ -z "$t" ] || [ "$t" = null ]; then
                echo "  time to 85% test accuracy, $which: not reached in 3 epochs (accuracy $a after $w s)"
            else
                echo "  time to 85% test accuracy, $which: measured $t s (accuracy $a)"
            fi
        done
    elif [ "$link" = 1gbit ]; then
        run "$gen" "$gen.ttt.log" --epochs 1 --target-accuracy 0.85 --no-trace --log-every 1000
        acc=$(json "$gen/run/summary.json" test_accuracy)
        ttt=$(json "$gen/run/summary.json" time_to_target_s)
        wall=$(json "$gen/run/summary.json" wall_s)
        if [ -z "$ttt" ] || [ "$ttt" = null ]; then
            echo "  time to 85% test accuracy: not reached in 1 epoch (test accuracy $acc after $wall s)"
        else
            ttt_1g=$ttt
            epoch_1g=$(awk -v m="$pipe_ms" -v e="$per_epoch" 'BEGIN { print m * e / 1000 }')
            awk -v t="$ttt" -v a="$acc" -v s="$steady" -v b="$extra" -v e="$per_epoch" 'BEGIN {
                printf "  time to 85%% test accuracy: measured %.1f s (1 epoch and its test pass, accuracy %s); simulated epoch %.1f s (the test pass is not simulated)\n", t, a, (s * e + b) / 1000 }'
        fi
    elif [ "$link" = 100mbit ] && [ -n "$ttt_1g" ]; then
        awk -v t="$ttt_1g" -v e1="$epoch_1g" -v m="$pipe_ms" -v e="$per_epoch" 'BEGIN {
            printf "  time to 85%% test accuracy: about %.0f s, scaled, not measured (1 epoch as at 1 Gbit/s, at this link'"'"'s epoch time)\n", t - e1 + m * e / 1000 }'
    fi
done
