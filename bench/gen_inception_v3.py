#!/usr/bin/env python3
"""gen_inception_v3.py: writes an Inception-v3-shaped PipeDream graph.txt on stdout, for
bench/planner.sh and the scale targets of docs/planner.md.

The graph follows torchvision's inception_v3 (299x299 input, training mode with AuxLogits):
every BasicConv2d is three nodes (Conv2d, BatchNorm2d, ReLU), as PipeDream's profiler records
them, the Inception A-E modules have their real branches (including E's split 1x3 / 3x1 pairs),
and the auxiliary classifier hangs off Mixed_6e. 326 nodes, like PipeDream's own profile.
Times are not measured: a convolution takes its FLOPs at 7.5 TFLOP/s (forward; backward twice
that), batch norm and ReLU move their bytes at 800 GB/s; activation and parameter sizes are exact
fp32 byte counts for the batch.
    gen_inception_v3.py [BATCH]        (default 64)
"""
import sys

BATCH = int(sys.argv[1]) if len(sys.argv) > 1 else 64
nodes, edges = [], []


def node(desc, fwd, act, par, inputs):
    nodes.append((desc, fwd, act, par))
    k = len(nodes)
    for i in inputs:
        edges.append((i, k))
    return k


def conv(x, cin, cout, kh, kw, h, w, stride=1, pad=(0, 0)):
    """BasicConv2d on input node x of shape (cin, h, w): Conv2d, BatchNorm2d, ReLU."""
    ho = (h + 2 * pad[0] - kh) // stride + 1
    wo = (w + 2 * pad[1] - kw) // stride + 1
    out = 4.0 * BATCH * cout * ho * wo
    flops = 2.0 * BATCH * cout * ho * wo * cin * kh * kw
    c = node("Conv2d(%d, %d, kernel_size=(%d, %d))" % (cin, cout, kh, kw), 1e3 * flops / 7.5e12,
             out, 4.0 * cin * cout * kh * kw, [x])
    b = node("BatchNorm2d(%d)" % cout, 1e3 * 2 * out / 8e11, out, 8.0 * cout, [c])
    r = node("ReLU(inplace)", 1e3 * 2 * out / 8e11, out, 0.0, [b])
    return r, cout, ho, wo


def pool(x, kind, c, h, w, k, stride, pad=0):
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = 4.0 * BATCH * c * ho * wo
    n = node("%s(kernel_size=%d, stride=%d)" % (kind, k, stride), 1e3 * (out + 4.0 * BATCH * c * h * w) / 8e11,
             out, 0.0, [x])
    return n, c, ho, wo


def concat(xs, c, h, w):
    out = 4.0 * BATCH * c * h * w
    return node("Concat(1)", 1e3 * 2 * out / 8e11, out, 0.0, xs)


def chain(x, cin, h, w, specs):
    for cout, kh, kw, stride, pad in specs:
        x, cin, h, w = conv(x, cin, cout, kh, kw, h, w, stride, pad)
    return x, cin, h, w


def inception_a(x, cin, h, w, pf):
    b1 = chain(x, cin, h, w, [(64, 1, 1, 1, (0, 0))])
    b5 = chain(x, cin, h, w, [(48, 1, 1, 1, (0, 0)), (64, 5, 5, 1, (2, 2))])
    b3 = chain(x, cin, h, w, [(64, 1, 1, 1, (0, 0)), (96, 3, 3, 1, (1, 1)), (96, 3, 3, 1, (1, 1))])
    p, _, _, _ = pool(x, "AvgPool2d", cin, h, w, 3, 1, 1)
    bp = chain(p, cin, h, w, [(pf, 1, 1, 1, (0, 0))])
    c = 64 + 64 + 96 + pf
    return concat([b1[0], b5[0], b3[0], bp[0]], c, h, w), c, h, w


def inception_b(x, cin, h, w):
    b3 = chain(x, cin, h, w, [(384, 3, 3, 2, (0, 0))])
    bd = chain(x, cin, h, w, [(64, 1, 1, 1, (0, 0)), (96, 3, 3, 1, (1, 1)), (96, 3, 3, 2, (0, 0))])
    p = pool(x, "MaxPool2d", cin, h, w, 3, 2)
    c = 384 + 96 + cin
    return concat([b3[0], bd[0], p[0]], c, b3[2], b3[3]), c, b3[2], b3[3]


def inception_c(x, cin, h, w, c7):
    b1 = chain(x, cin, h, w, [(192, 1, 1, 1, (0, 0))])
    b7 = chain(x, cin, h, w, [(c7, 1, 1, 1, (0, 0)), (c7, 1, 7, 1, (0, 3)), (192, 7, 1, 1, (3, 0))])
    bd = chain(x, cin, h, w, [(c7, 1, 1, 1, (0, 0)), (c7, 7, 1, 1, (3, 0)), (c7, 1, 7, 1, (0, 3)),
                              (c7, 7, 1, 1, (3, 0)), (192, 1, 7, 1, (0, 3))])
    p, _, _, _ = pool(x, "AvgPool2d", cin, h, w, 3, 1, 1)
    bp = chain(p, cin, h, w, [(192, 1, 1, 1, (0, 0))])
    return concat([b1[0], b7[0], bd[0], bp[0]], 768, h, w), 768, h, w


def inception_d(x, cin, h, w):
    b3 = chain(x, cin, h, w, [(192, 1, 1, 1, (0, 0)), (320, 3, 3, 2, (0, 0))])
    b7 = chain(x, cin, h, w, [(192, 1, 1, 1, (0, 0)), (192, 1, 7, 1, (0, 3)), (192, 7, 1, 1, (3, 0)),
                              (192, 3, 3, 2, (0, 0))])
    p = pool(x, "MaxPool2d", cin, h, w, 3, 2)
    c = 320 + 192 + cin
    return concat([b3[0], b7[0], p[0]], c, b3[2], b3[3]), c, b3[2], b3[3]


def inception_e(x, cin, h, w):
    b1 = chain(x, cin, h, w, [(320, 1, 1, 1, (0, 0))])
    s3 = chain(x, cin, h, w, [(384, 1, 1, 1, (0, 0))])
    a = chain(s3[0], 384, h, w, [(384, 1, 3, 1, (0, 1))])
    b = chain(s3[0], 384, h, w, [(384, 3, 1, 1, (1, 0))])
    b3 = concat([a[0], b[0]], 768, h, w)
    sd = chain(x, cin, h, w, [(448, 1, 1, 1, (0, 0)), (384, 3, 3, 1, (1, 1))])
    a = chain(sd[0], 384, h, w, [(384, 1, 3, 1, (0, 1))])
    b = chain(sd[0], 384, h, w, [(384, 3, 1, 1, (1, 0))])
    bd = concat([a[0], b[0]], 768, h, w)
    p, _, _, _ = pool(x, "AvgPool2d", cin, h, w, 3, 1, 1)
    bp = chain(p, cin, h, w, [(192, 1, 1, 1, (0, 0))])
    return concat([b1[0], b3, bd, bp[0]], 2048, h, w), 2048, h, w


def linear(x, cin, cout):
    return node("Linear(in_features=%d, out_features=%d)" % (cin, cout),
                1e3 * 2.0 * BATCH * cin * cout / 7.5e12, 4.0 * BATCH * cout, 4.0 * (cin * cout + cout), [x])


x = node("Input0", 0.0, 4.0 * BATCH * 3 * 299 * 299, 0.0, [])
x, c, h, w = chain(x, 3, 299, 299, [(32, 3, 3, 2, (0, 0)), (32, 3, 3, 1, (0, 0)), (64, 3, 3, 1, (1, 1))])
x, c, h, w = pool(x, "MaxPool2d", c, h, w, 3, 2)
x, c, h, w = chain(x, c, h, w, [(80, 1, 1, 1, (0, 0)), (192, 3, 3, 1, (0, 0))])
x, c, h, w = pool(x, "MaxPool2d", c, h, w, 3, 2)
for pf in (32, 64, 64):
    x, c, h, w = inception_a(x, c, h, w, pf)
x, c, h, w = inception_b(x, c, h, w)
for c7 in (128, 160, 160, 192):
    x, c, h, w = inception_c(x, c, h, w, c7)
# AuxLogits (training): avgpool 5/3, conv 1x1 to 128, conv 5x5 to 768, flatten, fc
a, ac, ah, aw = pool(x, "AvgPool2d", c, h, w, 5, 3)
a, ac, ah, aw = chain(a, ac, ah, aw, [(128, 1, 1, 1, (0, 0)), (768, 5, 5, 1, (0, 0))])
a = node("View(-1)", 0.0, 4.0 * BATCH * 768, 0.0, [a])
linear(a, 768, 1000)
x, c, h, w = inception_d(x, c, h, w)
for _ in range(2):
    x, c, h, w = inception_e(x, c, h, w)
x, c, h, w = pool(x, "AvgPool2d", c, h, w, 8, 1)
x = node("Dropout(p=0.5)", 1e3 * 2 * 4.0 * BATCH * c / 8e11, 4.0 * BATCH * c, 0.0, [x])
x = node("View(-1)", 0.0, 4.0 * BATCH * c, 0.0, [x])
linear(x, c, 1000)

for k, (desc, fwd, act, par) in enumerate(nodes, 1):
    print("node%d -- %s -- forward_compute_time=%.6f, backward_compute_time=%.6f, "
          "activation_size=%.1f, parameter_size=%.1f" % (k, desc, fwd, 2 * fwd, act, par))
for a, b in edges:
    print("\tnode%d -- node%d" % (a, b))
