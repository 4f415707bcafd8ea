#!/usr/bin/env python3
"""torch_gpt_train.py: PyTorch's side of the tiny GPT in tests/cli/test_onnx.sh. Builds
make_fixtures.py's GPT NAME, loads the initial weights pdplan wrote from its ONNX initializers
(INIT, a --init folder, through GENDIR/onnx_map.txt, which names each of our tensors'
initializer: wpe.weight is our wte.pos), and trains STEPS steps of SGD (lr LR, momentum 0.9, the
import's default optimizer with the settings' lr) on the u8 token file TRAIN with --no-shuffle's
windows (sample j is the tokens j*T .. j*T+T-1, its targets the next T; minibatch s holds
samples s*B .. s*B+B-1), the loss the mean cross-entropy over the B*T next-token targets. Then it
compares every parameter with the folder OURS that `pdlaunch --single --no-shuffle --save`
wrote.

PyTorch computes in float64 from the same float32 weights (as torch_train.py does for the CNN).
Prints one line per tensor: the max relative difference of the weights (max |ours - torch| over
max |torch|) and of the updates (the same over w - w0, a stricter figure); exits 1 when the
weights' worst is above TOL.

Usage: torch_gpt_train.py NAME GENDIR OURS TRAIN STEPS LR [TOL]"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures  # noqa: E402


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    name, gen, ours, train, steps, lr = sys.argv[1:7]
    tol = float(sys.argv[7]) if len(sys.argv) > 7 else 1e-4
    steps, lr = int(steps), float(lr)
    torch.set_num_threads(1)
    make, shape = make_fixtures.models()[name]
    B, T = shape
    model = make()
    ours_of = {}  # initializer -> our <layer>.<param>
    for line in open(os.path.join(gen, "onnx_map.txt")):
        if line.startswith("#"):
            continue
        f = line.rstrip("\n").split(" ", 4)
        ours_of[f[4]] = f[0]
    state = model.state_dict()
    params = dict(model.named_parameters())
    for k in params:
        w = np.fromfile(os.path.join(gen, "init", ours_of[k] + ".f32"), np.float32)
        state[k] = torch.from_numpy(w.reshape(state[k].shape).copy())
    model.load_state_dict(state)
    model.double()
    model.train()
    w0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    tok = torch.from_numpy(np.fromfile(train, np.uint8).astype(np.int64))

    def batch(s):
        x = torch.stack([tok[(s * B + j) * T:(s * B + j) * T + T] for j in range(B)])
        y = torch.stack([tok[(s * B + j) * T + 1:(s * B + j) * T + T + 1] for j in range(B)])
        return x, y

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for s in range(steps):
        x, y = batch(s)
        opt.zero_grad()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        opt.step()
    worst = worst_upd = 0.0
    for k, v in model.named_parameters():
        a = np.fromfile(os.path.join(ours, ours_of[k] + ".f32"), np.float32).reshape(v.shape)
        b = v.detach().numpy()
        rel = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
        d = b - w0[k].numpy()
        upd = float(np.abs((a - w0[k].numpy()) - d).max() / max(float(np.abs(d).max()), 1e-30))
        worst, worst_upd = max(worst, rel), max(worst_upd, upd)
        print("  %-22s max rel diff %.3g, of the update %.3g" % (k, rel, upd))
    print("final loss %.6f; max relative difference %.3g (tolerance %g), of the updates %.3g"
          % (loss.item(), worst, tol, worst_upd))
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
