#!/usr/bin/env python3
"""torch_train.py: PyTorch's side of tests/cli/test_onnx.sh. Trains make_fixtures.py's model NAME
from the initial weights in INIT (a --init folder: <layer>.<param>.f32, which pdplan wrote from
the ONNX initializers) on the first STEPS minibatches of Fashion-MNIST in file order, normalised
as runtime/data.c does, with SGD (lr 0.01, momentum 0.9; the ONNX import's defaults) and mean
softmax cross-entropy, then compares every parameter and batch-norm running statistic with the
folder OURS that `pdlaunch --single --no-shuffle --steps STEPS --save OURS` wrote.

PyTorch computes in float64 (from the same float32 initial weights and images): that is the
exact reference our float32 run is held to. PyTorch's own float32 run is no such reference here:
on the small CNN it leaves its float64 run by 2e-4 at step 6 and 6e-3 by step 20 (one ReLU or
pooling decision flips on a rounding), while ours stays within 3e-6 of it (docs/formats.md).

Prints one line per tensor and "max relative difference X" (per tensor, max |ours - torch| over
max |torch|); exits 1 when X > TOL.

Usage: torch_train.py NAME INIT OURS FMNIST_DIR STEPS BATCH [TOL]"""
import gzip
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures  # noqa: E402


def idx(path):
    """An IDX file (gzip or plain) as a numpy array."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            with (gzip.open(p) if p.endswith(".gz") else open(p, "rb")) as f:
                data = f.read()
            nd = data[3]
            dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
            return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)
    sys.exit("torch_train.py: no %s(.gz)" % path)


def images(d, split, n):
    """The first n images of a split as runtime/data.c normalises them, in float32."""
    px = idx(os.path.join(d, split + "-images-idx3-ubyte"))[:n].astype(np.float32)
    x = (px * np.float32(1.0 / 255.0) - np.float32(0.2860)) * (np.float32(1.0) / np.float32(0.3530))
    return torch.from_numpy(x.reshape(n, 1, 28, 28).copy())


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    name, init, ours, fm, steps, batch = sys.argv[1:7]
    tol = float(sys.argv[7]) if len(sys.argv) > 7 else 1e-4
    steps, batch = int(steps), int(batch)
    torch.set_num_threads(1)
    make, _ = make_fixtures.models()[name]
    model = make()
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            continue
        w = np.fromfile(os.path.join(init, k + ".f32"), np.float32)
        state[k] = torch.from_numpy(w.reshape(v.shape).copy())
    model.load_state_dict(state)
    model.double()
    model.train()
    x = images(fm, "train", steps * batch).double()
    y = torch.from_numpy(idx(os.path.join(fm, "train-labels-idx1-ubyte"))[:steps * batch].astype(np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for s in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[s * batch:(s + 1) * batch]),
                                                 y[s * batch:(s + 1) * batch])
        loss.backward()
        opt.step()
    worst = 0.0
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        a = np.fromfile(os.path.join(ours, k + ".f32"), np.float32).reshape(v.shape)
        b = v.numpy()
        rel = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
        worst = max(worst, rel)
        print("  %-24s max rel diff %.3g" % (k, rel))
    print("final loss %.6f; max relative difference %.3g (tolerance %g)" % (loss.item(), worst, tol))
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
