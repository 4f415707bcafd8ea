# lib.sh: shell functions shared by the benchmark scripts (source it).

# calibrate OUT PLAN SUMMARY PROFILE: PROFILE with each stage's layers scaled so that their sum
# equals the compute per minibatch that stage's rank measured in the run (summary.json); for a
# replicated stage, its slowest replica's (every all-reduce waits for it)
calibrate() {
    awk 'FNR == 1 { file++ }
        file == 1 && /^    layers: \[/ { s = $0; sub(/.*\[/, "", s); sub(/\].*/, "", s)
            n = split(s, L, /, */); for (i = 1; i <= n; i++) st[L[i]] = ns + 0; ns++; next }
        file == 2 && /"measured_compute_ms"/ { match($0, /"stage": [0-9]+/); k = substr($0, RSTART + 9, RLENGTH - 9) + 0
            match($0, /"measured_compute_ms": [^,]*/); meas[k] = substr($0, RSTART + 23, RLENGTH - 23) + 0
            if (match($0, /"slowest_replica_compute_ms": [^,]*/)) meas[k] = substr($0, RSTART + 30, RLENGTH - 30) + 0
            next }
        file == 3 && /forward_ms/ { sum[st[nm($0)]] += v($0, "forward_ms") + v($0, "backward_ms"); next }
        file == 4 && /forward_ms/ { k = st[nm($0)]; f = sum[k] > 0 && meas[k] > 0 ? meas[k] / sum[k] : 1
            sub(/forward_ms: [^,]*/, "forward_ms: " v($0, "forward_ms") * f)
            sub(/backward_ms: [^,]*/, "backward_ms: " v($0, "backward_ms") * f) }
        file == 4 { print }
        function nm(s) { match(s, /name: [^,]*/); return substr(s, RSTART + 6, RLENGTH - 6) }
        function v(s, key) { match(s, key ": [^,]*"); return substr(s, RSTART + length(key) + 2, RLENGTH - length(key) - 2) + 0 }' \
        "$2" "$3" "$4" "$4" >"$1"
}

# sim_run_ms SIMFILE STEPS: from pdplan --simulate's output, "PIPELINE_MS DP_MS": the plan's
# simulated time per minibatch over a run of STEPS minibatches (the simulated makespan of its
# first c minibatches extended at the steady state: (makespan + (STEPS - c) x steady) / STEPS,
# since a run's time includes warm-up and drain) and data parallelism's simulated steady time
sim_run_ms() {
    awk -v n="$2" '/^simulated/ { k++; if (k == 1) { c = $7; t = $10 } } k == 1 && /steady state/ { s = $3 }
         /data parallel, ms/ { d = $5 } END { printf "%.2f %.2f\n", (s * n + t - c * s) / n, d }' "$1"
}

# run_ms GENDIR STEPS: the measured time per minibatch of GENDIR's last run (summary.json train_s)
run_ms() {
    awk -v n="$2" '/"train_s"/ { gsub(/[",]/, ""); printf "%.2f\n", $2 * 1000 / n }' "$1/run/summary.json"
}
