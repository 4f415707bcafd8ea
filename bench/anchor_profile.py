#!/usr/bin/env python3
"""anchor_profile.py: a V100 profile (pd_profile: 1) for a bundled model from the H200 anchors.

Usage: bench/anchor_profile.py MODEL.yaml ANCHOR.json FACTOR OUT.yaml

Every measured H200 time is multiplied by FACTOR (3.39 in bench/paper_table.sh: the anchors'
README gives 198 ms per VGG-16 step at batch 128 on the H200 against 672 ms in the original
PipeDream's V100 profile of the same model and batch). Layers are matched by name:
  - an anchor node named exactly like a layer gives that layer its times;
  - an anchor node that is a block (ResNet's "layer1.0") spreads its times over the model's
    layers named "layer1.0.*", in proportion to their analytic V100 estimate (pdprof --estimate);
  - an lstm layer without an anchor of its own (GNMT-16's lstm8..15) takes the mean of the
    anchor's LSTM layers;
  - anything else (GNMT's attention projection, an anchor's missing backward) keeps the
    analytic V100 estimate.
The profile records how each layer was obtained in a comment."""
import json
import os
import re
import subprocess
import sys
import tempfile

LINE = re.compile(r"- \{name: ([^,]+), forward_ms: ([^,]+), backward_ms: ([^,]+),")


def estimate(model, batch, root):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "est.yaml")
        subprocess.run([os.path.join(root, "bin/pdprof"), model, "--estimate", "v100",
                        "--batch", str(batch), "-q", "-o", out], check=True,
                       stdout=subprocess.DEVNULL)
        layers = []
        for line in open(out):
            m = LINE.search(line)
            if m:
                layers.append([m.group(1), float(m.group(2)), float(m.group(3))])
        name = re.search(r"^model: (\S+)", open(out).read(), re.M).group(1)
    return name, layers


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    model, anchor_path, factor, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    a = json.load(open(anchor_path))
    batch = a["batch"]
    name, layers = estimate(model, batch, root)
    how = {l[0]: "estimate" for l in layers}
    t = {l[0]: [l[1], l[2]] for l in layers}
    lstm_f = [n["forward_ms"] for n in a["nodes"] if n["type"].startswith("LSTM")]
    lstm_b = [n["backward_ms"] for n in a["nodes"] if n["type"].startswith("LSTM")]
    for n in a["nodes"]:
        members = [l[0] for l in layers if l[0] == n["name"] or l[0].startswith(n["name"] + ".")]
        if not members:
            continue
        for k, key in enumerate(("forward_ms", "backward_ms")):
            if n[key] is None:
                continue
            total = sum(t[m][k] for m in members) or 1.0
            weights = {m: t[m][k] / total for m in members}
            for m in members:
                t[m][k] = n[key] * factor * weights[m]
        for m in members:
            how[m] = "anchor %s%s" % (n["name"], " (block)" if len(members) > 1 else "")
    if lstm_f:
        mf, mb = sum(lstm_f) / len(lstm_f), sum(lstm_b) / len(lstm_b)
        for l in layers:
            if how[l[0]] == "estimate" and re.fullmatch(r"lstm\d+", l[0]):
                t[l[0]] = [mf * factor, mb * factor]
                how[l[0]] = "mean of the anchor's LSTMs"
    rel = os.path.relpath(anchor_path, os.path.dirname(root)) if "shared" in anchor_path else anchor_path
    lines = ["# Written by bench/anchor_profile.py: H200 anchor %s times %.3g (H200 -> V100)," % (rel, factor),
             "# spread over blocks by the analytic V100 estimate; see docs/paper_table.md.",
             "pd_profile: 1", "device: v100", "model: %s" % name, "batch: %d" % batch, "layers:"]
    for l in layers:
        lines.append("  - {name: %s, forward_ms: %.6g, backward_ms: %.6g}  # %s"
                     % (l[0], t[l[0]][0], t[l[0]][1], how[l[0]]))
    open(out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
