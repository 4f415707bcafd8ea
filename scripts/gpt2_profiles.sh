#!/usr/bin/env bash
# gpt2_profiles.sh: writes profiles/gpt2_124m.h200.yaml and profiles/gpt2_1558m.h200.yaml, the
# planner's analytic H200 estimate (bin/pdprof --estimate h200: planner/model/estimate.c's
# roofline, 37 TFLOP/s, 4.0 TB/s, 0.005 ms per call) scaled by one factor so that GPT-2 124M's
# forward + backward summed over its layers at batch 8 x 1024 tokens equals the PyTorch anchor's
# fp32 training step on the H200 (176.9 ms, ../shared/anchors/h200/more.json: CUDA events,
# fp32 without TF32, fused AdamW included in the step). The same factor scales the 1.5B model
# (no anchor of its own). Every layer's forward_ms and backward_ms are multiplied by it; the
# layers' shares are the estimate's. Usage: bash scripts/gpt2_profiles.sh
set -eu
cd "$(dirname "$0")/.."
anchor_ms=176.9
make -s bin/pdprof
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in gpt2_124m gpt2_1558m; do
    bin/pdprof "models/$m.yaml" --estimate h200 -q -o "$tmp/$m.yaml" >/dev/null
done
sum() { awk '/forward_ms/ { match($0, /forward_ms: [^,]*/); s += substr($0, RSTART + 12, RLENGTH - 12)
                           match($0, /backward_ms: [^,]*/); s += substr($0, RSTART + 13, RLENGTH - 13) }
             END { printf "%.6f", s }' "$1"; }
est=$(sum "$tmp/gpt2_124m.yaml")
f=$(awk -v a="$anchor_ms" -v e="$est" 'BEGIN { printf "%.6f", a / e }')
for m in gpt2_124m gpt2_1558m; do
    out=profiles/$m.h200.yaml
    {
        echo "# $m on one H200, fp32, batch 8 x 1024 tokens: NOT measured. The analytic estimate"
        echo "# (bin/pdprof models/$m.yaml --estimate h200; planner/model/estimate.c) with every"
        echo "# layer's forward_ms and backward_ms multiplied by $f = $anchor_ms / $est: $anchor_ms ms"
        echo "# is PyTorch's GPT-2 124M fp32 training step on the H200 at 8 x 1024 tokens"
        echo "# (../shared/anchors/h200/more.json, fused AdamW included), $est ms the estimate's"
        echo "# sum of forward + backward over gpt2_124m's layers. The 1.5B model gets the same factor"
        echo "# (no anchor of its own). Written by scripts/gpt2_profiles.sh."
        awk -v f="$f" '
            /^#/ { next }
            /forward_ms/ { match($0, /forward_ms: [^,]*/); fw = substr($0, RSTART + 12, RLENGTH - 12) * f
                           match($0, /backward_ms: [^,]*/); bw = substr($0, RSTART + 13, RLENGTH - 13) * f
                           sub(/forward_ms: [^,]*/, sprintf("forward_ms: %.6g", fw))
                           sub(/backward_ms: [^,]*/, sprintf("backward_ms: %.6g", bw)) }
            { print }' "$tmp/$m.yaml"
    } >"$out"
    echo "wrote $out (sum of forward + backward $(sum "$out") ms per minibatch of 8)"
done
