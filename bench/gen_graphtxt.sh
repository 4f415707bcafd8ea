#!/usr/bin/env bash
# gen_graphtxt.sh: writes synthetic PipeDream graph.txt profiles on stdout, for bench/planner.sh.
#   gen_graphtxt.sh chain L              a chain of L layers
#   gen_graphtxt.sh inception C W D      C Inception-like cells: each fans out into W branches
#                                        of D layers that a Concat joins
#   gen_graphtxt.sh gnmt L X             GNMT-like: two input chains of L layers each, with a
#                                        cross edge from chain A to chain B every X layers, and
#                                        a final join
# Times (ms), activation and parameter bytes vary deterministically from layer to layer
# (a fixed linear congruential sequence), so the same arguments give the same file.
set -eu
kind=${1:?usage: gen_graphtxt.sh chain L | inception C W D | gnmt L X}
shift
awk -v kind="$kind" -v a1="${1:-10}" -v a2="${2:-4}" -v a3="${3:-3}" '
function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 } # exact in doubles
function node(id, desc, fwd, bwd, act, par) {
    printf "node%d -- %s -- forward_compute_time=%.3f, backward_compute_time=%.3f, " \
           "activation_size=%.1f, parameter_size=%.1f\n", id, desc, fwd, bwd, act, par
}
function layer(id) { # a compute layer with varying costs
    f = 0.2 + 2.0 * rnd()
    node(id, "Conv2d(" id ")", f, 2 * f * (0.8 + 0.4 * rnd()),
         4 * 64 * (16384 + int(200000 * rnd())), 4 * int(1000 + 500000 * rnd()))
}
function edge(a, b) { edges[ne++] = "\tnode" a " -- node" b }
BEGIN {
    seed = 12345; ne = 0; n = 0
    node(++n, "Input0", 5.0, 0.0, 4 * 64 * 3 * 224 * 224, 0.0)
    if (kind == "chain") {
        for (i = 0; i < a1; i++) { layer(++n); edge(n - 1, n) }
    } else if (kind == "inception") {
        prev = n
        for (c = 0; c < a1; c++) {
            stem = ++n; layer(stem); edge(prev, stem)
            cat = 0
            for (w = 0; w < a2; w++) {
                last = stem
                for (d = 0; d < a3; d++) { layer(++n); edge(last, n); last = n }
                tails[w] = last
            }
            cat = ++n
            node(cat, "Concat(1)", 0.0, 0.0, 4 * 64 * 65536, 0.0)
            for (w = 0; w < a2; w++) edge(tails[w], cat)
            prev = cat
        }
    } else if (kind == "gnmt") {
        inb = ++n; node(inb, "Input1", 1.0, 0.0, 4 * 64 * 50 * 1024, 0.0)
        pa = 1; pb = inb
        for (i = 0; i < a1; i++) {
            a = ++n; layer(a); edge(pa, a)
            b = ++n; layer(b); edge(pb, b)
            if (a2 > 0 && (i + 1) % a2 == 0) edge(a, b)
            pa = a; pb = b
        }
        j = ++n; node(j, "Add", 0.0, 0.0, 4 * 64 * 1024 * 50, 0.0)
        edge(pa, j); edge(pb, j)
    } else {
        print "gen_graphtxt.sh: unknown kind " kind > "/dev/stderr"; exit 2
    }
    for (e = 0; e < ne; e++) print edges[e]
}'
