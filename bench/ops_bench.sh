#!/usr/bin/env bash
# ops_bench.sh: builds bench/ops_bench.c against the CPU kernels (runtime/cpu/ops_*.c, init, optim,
# rng, data; oneDNN for conv2d when libdnnl-dev is installed) into build/ops_bench, and runs it with
# one BLAS thread. Arguments go to ops_bench.
#   bash bench/ops_bench.sh --vs-torch [ROUNDS]: every convolution and linear of
#   models/fmnist_cnn.yaml (batch 64) and VGG-16's first two blocks (224x224, batch 2), each alone,
#   forward and backward: ours (oneDNN), ours without oneDNN (im2col + sgemm) and PyTorch's
#   (bench/ops_torch.py, one thread; Debian's python3-torch, skipped with a note when missing),
#   CPU ms per call, the best of ROUNDS (default 5) rounds, with PyTorch's time over ours.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build
ZLIB=""
if [ -f /usr/include/zlib.h ]; then ZLIB="-DPD_HAVE_ZLIB -lz"; fi
DNNL=""
if [ -f /usr/include/oneapi/dnnl/dnnl.h ]; then DNNL="-DPD_HAVE_DNNL -ldnnl -lgomp"; fi
# shellcheck disable=SC2086
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I. \
    $(pkg-config --cflags openblas) $(pkg-config --cflags ompi-c) -o build/ops_bench bench/ops_bench.c runtime/cpu/ops_*.c \
    runtime/init.c runtime/optim.c runtime/base/rng.c runtime/base/base.c runtime/data.c \
    $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) $ZLIB $DNNL $(pkg-config --libs ompi-c) -lm
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
[ "${1:-}" = --vs-torch ] || exec build/ops_bench "$@"

rounds=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/layers" <<'LAYERS'
fmnist.conv1 conv 64 1 28 28 32 3 1
fmnist.conv2 conv 64 32 14 14 32 3 0
fmnist.conv3 conv 64 32 7 7 64 3 0
fmnist.conv4 conv 64 64 7 7 64 3 0
fmnist.fc1 linear 64 3136 1 1 128 0 0
fmnist.fc2 linear 64 128 1 1 10 0 0
vgg16.conv1_1 conv 2 3 224 224 64 3 1
vgg16.conv1_2 conv 2 64 224 224 64 3 0
vgg16.conv2_1 conv 2 64 112 112 128 3 0
vgg16.conv2_2 conv 2 128 112 112 128 3 0
LAYERS
build/ops_bench --layers "$tmp/layers" --rounds "$rounds" >"$tmp/ours"
build/ops_bench --layers "$tmp/layers" --rounds "$rounds" --im2col | sed 's/^ours/im2col/' >"$tmp/im2col"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 bench/ops_torch.py "$tmp/layers" "$rounds" >"$tmp/torch"
else
    echo "note: no PyTorch (apt-get install python3-torch): its columns are empty" >&2
    : >"$tmp/torch"
fi
echo "CPU ms per call, one thread, best of $rounds rounds; ratio = PyTorch's time / ours (> 1: ours faster)"
awk '{ t[$1 " " $2] = $3 " " $4 } $1 == "ours" { order[++n] = $2 }
     END {
         printf "%-15s | %8s %8s %8s %6s | %8s %8s %8s %6s\n", "layer", "fwd", "im2col", "torch",
                "ratio", "bwd", "im2col", "torch", "ratio"
         for (i = 1; i <= n; i++) {
             k = order[i]; split(t["ours " k], o, " "); split(t["im2col " k], m, " ")
             split(t["torch " k], p, " ")
             rf = p[1] ? sprintf("%.2f", p[1] / o[1]) : "-"; rb = p[2] ? sprintf("%.2f", p[2] / o[2]) : "-"
             printf "%-15s | %8.3f %8.3f %8s %6s | %8.3f %8.3f %8s %6s\n", k, o[1], m[1],
                    p[1] ? sprintf("%.3f", p[1]) : "-", rf, o[2], m[2], p[2] ? sprintf("%.3f", p[2]) : "-", rb
         }
     }' "$tmp/ours" "$tmp/im2col" "$tmp/torch"
