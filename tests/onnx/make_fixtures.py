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
  gpt.onnx       a tiny GPT with models/gpt_char.yaml's structure (vocabulary 16, context 8,
                 width 16, 2 heads, 2 blocks; nanoGPT's modules: a registered tril buffer with
                 masked_fill, nn.GELU(approximate='tanh'), nn.LayerNorm), int64 token ids
                 [4, 8] in, logits [4, 8, 16] out; opset 13 (LayerNorm decomposed)
  gpt17.onnx     the same at opset 17 (LayerNormalization nodes)
  gpt_formula.onnx the same with the GELU written out as 0.5 x (1 + tanh(...))
  gpt_addmask.onnx the same with the mask added (a buffer of 0 and -inf) instead of masked_fill
  gpt_dynamic.onnx the same exported with a dynamic batch (dynamic_axes): shapes computed by
                 Shape, Gather, Div, Cast, Unsqueeze, Concat and positions by Range
  gpt_triu.onnx  the same with the mask buffer torch.triu (each query sees the later keys), which
                 pdplan must refuse naming the Where node: its attention is causal
  gpt_seed.onnx  a smaller GPT (vocabulary 8, context 4, width 8, one block), the fuzzer's seed
                 (fuzz/corpus/fuzz_onnx/gpt_seed.onnx)

Beside each NAME.onnx, NAME.params holds PyTorch's parameter count of the model.
Usage: make_fixtures.py OUTDIR [NAME...]   (all when no NAME). Seeds are fixed, so the initial
weights are the same on every run; tests/cli/test_onnx.sh calls this once per suite run, and
tests/data/onnx/softplus.onnx is this script's softplus, committed so that the refusal is tested
where torch is missing."""
import math
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


class Block(nn.Module):
    """nanoGPT's pre-LN block: fused qkv, causal attention through a registered tril buffer,
    output projection, residual; LayerNorm, MLP 4C with the tanh GELU, residual."""

    def __init__(self, C, H, T, formula, mask=torch.tril, additive=False):
        super().__init__()
        self.H, self.formula, self.additive = H, formula, additive
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.gelu = nn.GELU(approximate="tanh")
        self.mlp_proj = nn.Linear(4 * C, C)
        self.register_buffer("bias", mask(torch.ones(T, T)).view(1, 1, T, T))
        if additive:
            self.bias.masked_fill_(self.bias == 0, float("-inf")).masked_fill_(self.bias == 1, 0.0)

    def attn(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        k = k.view(B, T, self.H, C // self.H).transpose(1, 2)
        q = q.view(B, T, self.H, C // self.H).transpose(1, 2)
        v = v.view(B, T, self.H, C // self.H).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        if self.additive:
            att = att + self.bias[:, :, :T, :T]
        else:
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)

    def mlp(self, x):
        x = self.c_fc(x)
        if self.formula:
            x = 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
        else:
            x = self.gelu(x)
        return self.mlp_proj(x)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """models/gpt_char.yaml's structure at a small size: token and learned position
    embeddings, pre-LN blocks, a final LayerNorm and an untied linear head."""

    def __init__(self, V=16, T=8, C=16, H=2, L=2, formula=False, mask=torch.tril, additive=False):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList([Block(C, H, T, formula, mask, additive) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, V)

    def forward(self, idx):
        B, T = idx.size()
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for b in self.h:
            x = b(x)
        return self.lm_head(self.ln_f(x))


def models():
    import torchvision
    return {
        "cnn": (lambda: CNN(True), (32, 1, 28, 28)),
        "cnn_nodrop": (lambda: CNN(False, False), (32, 1, 28, 28)),
        "resblock": (ResBlock, (8, 3, 16, 16)),
        "resnet18": (lambda: torchvision.models.resnet18(), (2, 3, 224, 224)),
        "softplus": (SoftplusNet, (4, 20)),
        "gpt": (GPT, (4, 8)),
        "gpt17": (GPT, (4, 8)),
        "gpt_formula": (lambda: GPT(formula=True), (4, 8)),
        "gpt_addmask": (lambda: GPT(additive=True), (4, 8)),
        "gpt_dynamic": (GPT, (4, 8)),
        "gpt_triu": (lambda: GPT(mask=torch.triu), (4, 8)),
        "gpt_seed": (lambda: GPT(V=8, T=4, C=8, H=2, L=1), (2, 4)),
    }


OPSET = {"gpt17": 17}
DYNAMIC = {"gpt_dynamic": {"input": {0: "batch"}, "logits": {0: "batch"}}}


def export(name, make, shape, out):
    torch.manual_seed(1)
    model = make()
    model.train()
    x = torch.zeros(shape, dtype=torch.long) if name.startswith("gpt") else torch.zeros(shape)
    torch.onnx.export(model, x, out, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, opset_version=OPSET.get(name, 13),
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes=DYNAMIC.get(name))
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
