# ops_torch.py: PyTorch's side of bench/ops_bench.sh: the same layers (the convolutions and
# linears of models/fmnist_cnn.yaml at batch 64, and VGG-16's first two blocks at batch 2), each
# timed alone on one thread, forward and backward (the input's gradient, except for a network's
# first layer, and the weight and bias gradients), CPU time per call, the best of several rounds.
# Prints one line per layer: "torch NAME FORWARD_MS BACKWARD_MS". Run by bench/ops_bench.sh with
# /usr/bin/python3 (Debian's python3-torch, which uses oneDNN for convolutions).
# Usage: ops_torch.py LAYERS_FILE [ROUNDS]  (LAYERS_FILE: "name kind B C H W OC K first" lines)
import os, sys
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import time
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


def cpu_ms(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return 1e3 * best


def main():
    layers = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for name, kind, B, C, H, W, OC, K, first in layers:
        B, C, H, W, OC, K, first = map(int, (B, C, H, W, OC, K, first))
        if kind == "conv":
            x = torch.randn(B, C, H, W, requires_grad=not first)
            w = torch.randn(OC, C, K, K, requires_grad=True)
            b = torch.randn(OC, requires_grad=True)
            f = lambda: F.conv2d(x, w, b, padding=K // 2)
        else:
            x = torch.randn(B, C, requires_grad=not first)
            w = torch.randn(OC, C, requires_grad=True)
            b = torch.randn(OC, requires_grad=True)
            f = lambda: F.linear(x, w, b)
        y = f()
        g = torch.randn_like(y)
        reps = max(1, int(0.05 / max(1e-4, cpu_ms(f, 1) / 1e3)))  # about 50 ms a round
        fwd = bwd = float("inf")
        for _ in range(rounds):
            fwd = min(fwd, cpu_ms(lambda: [f() for _ in range(reps)], 1) / reps)
            ys = [f() for _ in range(reps)]
            bwd = min(bwd, cpu_ms(lambda: [yy.backward(g) for yy in ys], 1) / reps)
        print(f"torch {name} {fwd:.4f} {bwd:.4f}", flush=True)


main()
