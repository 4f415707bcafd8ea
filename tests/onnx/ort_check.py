#!/usr/bin/env python3
"""ort_check.py: runs a trained ONNX file (pdlaunch --save-onnx) with onnxruntime on the first
BATCH test images of Fashion-MNIST, normalised as runtime/data.c does, and compares its output
with LOGITS, the raw float32 [BATCH][classes] that our runtime's evaluation wrote
(pdlaunch --single --save-logits). Prints the max relative difference (max |ort - ours| over
max |ours|) and exits 1 when it is above TOL.

For a language model (an int64 input [BATCH, T]) the third argument is instead the u8 token
file of the validation split (data.h's format u8): the first minibatch is its windows j*T .. j*T+T-1,
j < BATCH, as our evaluation takes them, and LOGITS is [BATCH][T][V].

Run it with the virtual environment's python that make deps creates (data/onnx-venv: onnxruntime
from PyPI; Debian's python3-onnx 1.12 has no evaluator).
Usage: ort_check.py MODEL.onnx LOGITS FMNIST_DIR|VAL.bin BATCH [TOL]"""
import gzip
import os
import sys

import numpy as np
import onnxruntime as ort


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    model, logits, fm, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if inp.type == "tensor(int64)":
        T = inp.shape[1]
        tok = np.fromfile(fm, np.uint8)[:batch * T].astype(np.int64)
        got = sess.run(None, {inp.name: tok.reshape(batch, T)})[0]
    else:
        path = os.path.join(fm, "t10k-images-idx3-ubyte")
        raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
        px = np.frombuffer(raw, np.uint8, offset=16)[:batch * 784].astype(np.float32)
        x = (px * np.float32(1.0 / 255.0) - np.float32(0.2860)) * (np.float32(1.0) / np.float32(0.3530))
        got = sess.run(None, {inp.name: x.reshape(batch, 1, 28, 28)})[0]
    ours = np.fromfile(logits, np.float32).reshape(got.shape)
    rel = float(np.abs(got - ours).max() / max(float(np.abs(ours).max()), 1e-30))
    print("onnxruntime %s: logits %s, max relative difference to ours %.3g (tolerance %g)"
          % (ort.__version__, "x".join(map(str, got.shape)), rel, tol))
    sys.exit(0 if rel <= tol else 1)


if __name__ == "__main__":
    main()
