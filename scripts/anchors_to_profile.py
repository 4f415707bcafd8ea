#!/usr/bin/env python3
"""anchors_to_profile.py: converts a per-layer anchor file (../shared/anchors/<dev>/<model>.json,
PyTorch's measured forward/backward ms per layer) into a pdplan profile (pd_profile: 1).

Usage: scripts/anchors_to_profile.py ANCHOR.json DEVICE MODEL > profiles/MODEL.DEVICE.yaml
Run once per bundled model; the output is committed."""
import json
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    path, device, model = sys.argv[1:]
    with open(path) as f:
        a = json.load(f)
    out = [
        "# Converted by scripts/anchors_to_profile.py from %s" % path.split("/shared/")[-1],
        "# (PyTorch eager, fp32 without TF32, median times per minibatch; see anchors/README.md).",
        "pd_profile: 1",
        "device: %s" % device,
        "model: %s" % model,
        "batch: %d" % a["batch"],
        "layers:",
    ]
    for n in a["nodes"]:
        out.append("  - {name: %s, forward_ms: %r, backward_ms: %r, activation_bytes: %d, "
                   "parameter_bytes: %d}" % (n["name"], n["forward_ms"], n["backward_ms"],
                                             n["activation_bytes"], n["parameter_bytes"]))
    print("\n".join(out))


if __name__ == "__main__":
    main()
