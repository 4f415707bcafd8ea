#!/usr/bin/env bash
# schedule_timelines.sh: draws each synchronous schedule's timeline from the simulator, as text,
# for docs/runtime.md: S equal stages (one linear layer each, forward 1 ms, backward 2 ms, which
# the simulator splits into B = W = 1 ms), M microbatches, no communication (bandwidth 1e15),
# through `pdplan --schedule S --microbatches M --simulate` and its sim_trace.json. One column
# per millisecond: F forward, B backward_input (or the whole backward: b = its second ms),
# W backward_weight, '.' idle; the first batch (1f1b and 2bw, which do not flush: the first two),
# one row per stage with the minibatch numbers mod 10 below. Then interleaved on S ranks with 2
# chunks each (2S equal stages of the same cost, rank r holding stages r and r + S), one row per
# rank with the minibatch numbers and the chunk (0, 1) of each action below.
# Usage: bench/schedule_timelines.sh [STAGES (default 4)] [MICROBATCHES (default 8)]
set -eu
cd "$(dirname "$0")/.."
S=${1:-4}
M=${2:-8}
make -s -j2 bin/pdplan
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
equal() { # N PREFIX: a model of N equal linear layers and its profile, PREFIX.yaml and PREFIX.prof.yaml
    {
        printf 'pd: 1\nname: equal%d\ninput: [64]\nclasses: 64\nbatch: 8\ndataset: synthetic\nlayers:\n' "$1"
        for i in $(seq 0 $(($1 - 1))); do printf '  - {name: l%d, op: linear, out_features: 64}\n' "$i"; done
    } >"$2.yaml"
    {
        printf 'pd_profile: 1\ndevice: unit\nbatch: 8\nlayers:\n'
        for i in $(seq 0 $(($1 - 1))); do
            printf '  - {name: l%d, forward_ms: 1, backward_ms: 2, activation_bytes: 2048, parameter_bytes: 16640}\n' "$i"
        done
    } >"$2.prof.yaml"
}
equal "$S" "$tmp/model"
mv "$tmp/model.prof.yaml" "$tmp/profile.yaml"
for sched in 1f1b flush gpipe zb-h1 zb-h2 2bw; do
    bin/pdplan "$tmp/model.yaml" -p "$tmp/profile.yaml" -n "$S" -b 1e15 --straight --no-codegen \
        --schedule "$sched" --microbatches "$M" --simulate -o "$tmp/$sched" >"$tmp/$sched.log"
    steady=$(awk '/^simulated/ && !k++ { on = 1 } on && /steady state/ { print $3; exit }' "$tmp/$sched.log")
    python3 - "$tmp/$sched/sim_trace.json" "$sched" "$S" "$M" "$steady" <<'PY'
import json, sys
path, name, S, M, steady = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ev = [e for e in json.load(open(path))["traceEvents"] if e.get("ph") == "X" and e.get("pid") == 0]
lim = 2 * M if name in ("1f1b", "2bw") else M  # no flush: two batches show the steady state
rows = {}
end = 0
for e in ev:
    what, _, mb = e["name"].partition(" ")
    if not mb.isdigit() or int(mb) >= lim: continue
    letter = {"forward": "F", "backward": "B", "backward_input": "B", "backward_weight": "W"}.get(what)
    if not letter: continue
    t0, n = round(e["ts"] / 1000), round(e["dur"] / 1000)
    for k in range(n):
        c = "b" if letter == "B" and what == "backward" and k > 0 else letter
        rows.setdefault(e["tid"], {})[t0 + k] = (c, int(mb) % 10)
    end = max(end, t0 + n)
print("%s, %d stages, %d microbatches%s: %d ms (busy %d ms per stage), steady state %s ms per minibatch"
      % (name, S, M, ", the first two batches" if lim > M else "", end, 3 * lim, steady))
for r in sorted(rows):
    line = "".join(rows[r].get(t, (".", " "))[0] for t in range(end))
    nums = "".join(str(rows[r][t][1]) if t in rows[r] else " " for t in range(end))
    print("  stage %d  %s" % (r, line))
    print("           %s" % nums)
print()
PY
done

# interleaved: S ranks x 2 chunks of one layer each
equal $((2 * S)) "$tmp/model2"
bin/pdplan "$tmp/model2.yaml" -p "$tmp/model2.prof.yaml" -n "$S" -b 1e15 --no-codegen \
    --schedule interleaved --chunks 2 --microbatches "$M" --simulate -o "$tmp/interleaved" >"$tmp/interleaved.log"
steady=$(awk '/^simulated/ && !k++ { on = 1 } on && /steady state/ { print $3; exit }' "$tmp/interleaved.log")
python3 - "$tmp/interleaved/sim_trace.json" "$S" "$M" "$steady" <<'PY'
import json, sys
path, S, M, steady = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ev = [e for e in json.load(open(path))["traceEvents"] if e.get("ph") == "X" and e.get("pid") == 0]
rows, end = {}, 0
for e in ev:
    what, _, mb = e["name"].partition(" ")
    letter = {"forward": "F", "backward": "B"}.get(what)
    if not letter or not mb.isdigit() or int(mb) >= M: continue
    t0, n = round(e["ts"] / 1000), round(e["dur"] / 1000)
    for k in range(n):
        rows.setdefault(e["tid"], {})[t0 + k] = ("b" if letter == "B" and k else letter, int(mb) % 10,
                                                  e["args"]["stage"] // S)
    end = max(end, t0 + n)
print("interleaved, %d ranks x 2 chunks, %d microbatches: %d ms (busy %d ms per rank), steady state %s ms per minibatch"
      % (S, M, end, 6 * M, steady))
for r in sorted(rows):
    for i, label in enumerate(("rank %d  " % r, "   mb    ", "   chunk ")):
        print("  %s%s" % (label, "".join(str(rows[r][t][i]) if t in rows[r] else ("." if i == 0 else " ")
                                        for t in range(end))))
print()
PY
