# torch_fmnist_cnn.py: PyTorch's side of bench/time_to_accuracy.sh: models/fmnist_cnn.yaml
# exactly (4 convolutions, 2 linears, batch 64, SGD lr 0.02 momentum 0.9, inputs normalised as
# runtime/data.c does, (p/255 - 0.2860)/0.3530), trained on Fashion-MNIST with THREADS threads,
# the test accuracy checked every EVAL_EVERY steps (the evaluation's time counts, as it does in
# ours), until it reaches TARGET or EPOCHS end. The same network as the anchor
# ../shared/anchors/cpu/torch_fmnist_cnn.py, with the cadence a parameter.
# Prints "torch threads=T samples/s=S cpu_samples/s=C" (training time only; C by the process's CPU
# time, which other load on the machine disturbs less) and "torch time_to_target_s=X step=N"
# (or "not reached"). With STEPS > 0 it stops after STEPS steps (EVAL_EVERY 0: no evaluation):
# bench/single_vs_torch.sh's throughput runs.
# Usage: /usr/bin/python3 torch_fmnist_cnn.py THREADS [EVAL_EVERY (100)] [TARGET (0.85)] [EPOCHS (3)]
#        [STEPS (0: no limit)]
import os, sys
_threads = sys.argv[1] if len(sys.argv) > 1 else "1"
# Debian's torch does its matrix products in OpenBLAS, which ignores torch.set_num_threads: pin both
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads)
os.environ.setdefault("OMP_NUM_THREADS", _threads)
import gzip, struct, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

D = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(D, name)) as f:
        data = f.read()
    nd = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def images(name):
    x = torch.tensor(idx(name), dtype=torch.float32).unsqueeze(1)
    return (x / 255.0 - 0.2860) / 0.3530


class FmnistCnn(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(1, 32, 3, padding=1); s.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        s.conv3 = nn.Conv2d(32, 64, 3, padding=1); s.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        s.fc1 = nn.Linear(64 * 7 * 7, 128); s.fc2 = nn.Linear(128, 10)

    def forward(s, x):
        x = F.max_pool2d(F.relu(s.conv1(x)), 2); x = F.max_pool2d(F.relu(s.conv2(x)), 2)
        x = F.relu(s.conv4(F.relu(s.conv3(x))))
        return s.fc2(F.relu(s.fc1(x.flatten(1))))


def evaluate(m, xte, yte):
    m.eval()
    with torch.no_grad():
        acc = sum((m(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                  for i in range(0, len(yte), 1000)) / len(yte)
    m.train()
    return acc


def main():
    threads = int(_threads)
    every = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    target = float(sys.argv[3]) if len(sys.argv) > 3 else 0.85
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    max_steps = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    torch.set_num_threads(threads); torch.manual_seed(0)
    xtr, xte = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
    ytr = torch.tensor(idx("train-labels-idx1-ubyte.gz"), dtype=torch.long)
    yte = torch.tensor(idx("t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    m = FmnistCnn(); opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)
    B, n, steps, hit, train_s, train_cpu = 64, xtr.shape[0], 0, None, 0.0, 0.0
    t0 = time.time()
    for epoch in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n - B + 1, B):
            ts, tc = time.time(), time.process_time()
            idxs = perm[i:i + B]
            loss = F.cross_entropy(m(xtr[idxs]), ytr[idxs])
            opt.zero_grad(); loss.backward(); opt.step(); steps += 1
            train_s += time.time() - ts
            train_cpu += time.process_time() - tc
            if max_steps and steps >= max_steps:
                break
            if every and steps % every == 0:
                acc = evaluate(m, xte, yte)
                print(f"torch step {steps} test_accuracy {acc:.4f} elapsed {time.time() - t0:.1f} s", flush=True)
                if acc >= target:
                    hit = (time.time() - t0, steps)
                    break
        if hit or (max_steps and steps >= max_steps):
            break
    print(f"torch threads={threads} samples/s={steps * B / train_s:.1f} cpu_samples/s={steps * B / train_cpu:.1f}")
    if hit:
        print(f"torch time_to_target_s={hit[0]:.2f} step={hit[1]}")
    else:
        print("torch time_to_target_s=not reached")


main()
