# lstm_torch_check.py: our CPU lstm kernels (runtime/cpu/ops_lstm.c, built as a shared object
# by tests/cli/test_lstm.sh) against PyTorch's nn.LSTM on the same weights, laid out as
# docs/ops.md says: our weight_ih direction 0 is nn.LSTM's weight_ih_l0, direction 1 its
# weight_ih_l0_reverse (likewise weight_hh, bias_ih, bias_hh), gates i, f, g, o in both. Checks
# the output and the gradients of the input and of every parameter (L = sum(w * y)), in one and
# two directions, and prints the largest relative error. Exit status 0 when all are within 1e-5.
# Usage: /usr/bin/python3 lstm_torch_check.py LIB.so   (needs python3-torch and numpy)
import ctypes, sys
import numpy as np, torch

lib = ctypes.CDLL(sys.argv[1])
P = ctypes.POINTER(ctypes.c_float)
lib.pdrt_lstm_scratch_floats.restype = ctypes.c_size_t
for f in (lib.pdrt_lstm_forward, lib.pdrt_lstm_backward):
    f.restype = None

def ptr(a):
    return a.ctypes.data_as(P) if a is not None else None

def case(B, T, F, H, D):
    torch.manual_seed(B * 1000 + T * 100 + F * 10 + H + D)
    m = torch.nn.LSTM(F, H, 1, batch_first=True, bidirectional=D == 2)
    x = torch.randn(B, T, F, requires_grad=True)
    y, _ = m(x)  # zero initial state, as ours
    w = torch.randn_like(y)
    (y * w).sum().backward()
    sfx = ["", "_reverse"][:D]
    def stack(name):  # ours: [D][...] with direction d = nn.LSTM's name + sfx[d]
        return np.ascontiguousarray(np.stack([getattr(m, name + s).detach().numpy() for s in sfx]),
                                    dtype=np.float32)
    def gstack(name):
        return np.stack([getattr(m, name + s).grad.numpy() for s in sfx]).astype(np.float32)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    prm = [stack(n) for n in names]
    xin = np.ascontiguousarray(x.detach().numpy(), dtype=np.float32)
    out = np.zeros((B, T, D * H), np.float32)
    gates = np.zeros((D, B, T, 4 * H), np.float32)
    cell = np.zeros((D, B, T, 2 * H), np.float32)  # c and tanh(c)
    lib.pdrt_lstm_forward(ptr(out), ptr(gates), ptr(cell), ptr(xin), *[ptr(p) for p in prm],
                          B, T, F, H, D)
    grads = [np.zeros_like(xin)] + [np.zeros_like(p) for p in prm]
    scratch = np.zeros(lib.pdrt_lstm_scratch_floats(B, T, H), np.float32)
    dy = np.ascontiguousarray(w.numpy(), dtype=np.float32)
    lib.pdrt_lstm_backward(*[ptr(g) for g in grads], ptr(scratch), ptr(dy), ptr(out), ptr(xin),
                           ptr(prm[0]), ptr(prm[1]), ptr(gates), ptr(cell), B, T, F, H, D)
    want = [y.detach().numpy(), x.grad.numpy()] + [gstack(n) for n in names]
    got = [out] + grads
    what = ["output", "input grad"] + [n + " grad" for n in names]
    worst = 0.0
    for n, g, r in zip(what, got, want):
        e = float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-30))
        worst = max(worst, e)
        if not e <= 1e-5:
            print(f"lstm B={B} T={T} F={F} H={H} D={D}: {n} relative error {e:.3g}")
    return worst

worst = max(case(3, 7, 5, 4, 1), case(2, 6, 3, 5, 2), case(4, 20, 16, 32, 1))
print(f"largest relative error against torch {torch.__version__} nn.LSTM: {worst:.3g}")
sys.exit(0 if worst <= 1e-5 else 1)
