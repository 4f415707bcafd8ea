#!/usr/bin/env python3
"""make_fixtures.py: exports the ONNX test models with Debian's python3-torch (1.13), in training
mode with constant folding off (so that batch norm stays a node with its running statistics and
every initializer keeps its parameter's name), into OUTDIR:

  cnn.onnx       a small CNN for Fashion-MNIST (conv-bn-relu-maxpool, conv-relu-avgpool with
                 padding, flatten, linear-relu-dropout-linear), batch 32
  cnn_nodrop.onnx the same without dropout and with an average pool first (its training is
                 compared with PyTorch's: a max-pool window whose two largest inputs differ by a
                 rounding error sends its gradient to either one, so float32 and float64 runs
                 part, and 20 steps of momentum SGD grew one such flip to 5.7e-3 relative once
                 convolutions went through oneDNN, whose sums round differently from im2col's)
  resblock.onnx  a ResNet-style block with batch norm and a downsampling shortcut, on 3x16x16
  resnet18.onnx  torchvision's resnet18 (batch 2, 3x224x224), exported but never trained here
  softplus.onnx  a model with Softplus, which pdplan must refuse naming the node

Beside each NAME.onnx, NAME.params holds PyTorch's parameter count of the model.
Usage: make_fixtures.py OUTDIR [NAME...]   (all when no NAME). Seeds are fixed, so the initial
weights are the same on every run; tests/cli/test_onnx.sh calls this once per suite run, and
tests/data/onnx/softplus.onnx is this script's softplus, committed so that the refusal is tested
where torch is missing."""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self, dropout=True, max_pool=True):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(2) if max_pool else nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.pool2 = nn.AvgPool2d(2, padding=1)
        self.fc1 = nn.Linear(16 * 7 * 7, 32)
        self.drop = nn.Dropout(0.25) if dropout else None
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool2(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        if self.drop is not None:
            x = self.drop(x)
        return self.fc2(x)


class ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.down = nn.Conv2d(8, 16, 1, stride=2, bias=False)
        self.bn_down = nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = F.relu(y + self.bn_down(self.down(x)))
        return self.fc(torch.flatten(self.pool(y), 1))


class SoftplusNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(F.softplus(self.fc1(x)))


def models():
    import torchvision
    return {
        "cnn": (lambda: CNN(True), (32, 1, 28, 28)),
        "cnn_nodrop": (lambda: CNN(False, False), (32, 1, 28, 28)),
        "resblock": (ResBlock, (8, 3, 16, 16)),
        "resnet18": (lambda: torchvision.models.resnet18(), (2, 3, 224, 224)),
        "softplus": (SoftplusNet, (4, 20)),
    }


def export(name, make, shape, out):
    torch.manual_seed(1)
    model = make()
    model.train()
    x = torch.zeros(shape)
    torch.onnx.export(model, x, out, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, opset_version=13,
                      input_names=["input"], output_names=["logits"])
    return model


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    table = models()
    names = sys.argv[2:] or list(table)
    for name in names:
        make, shape = table[name]
        model = export(name, make, shape, os.path.join(outdir, name + ".onnx"))
        with open(os.path.join(outdir, name + ".params"), "w") as f:  # PyTorch's count
            f.write("%d\n" % sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
