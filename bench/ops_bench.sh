#!/usr/bin/env bash
# ops_bench.sh: builds bench/ops_bench.c against the CPU kernels (runtime/cpu/ops_*.c, init, optim,
# rng, data) into build/ops_bench, and runs it with one BLAS thread. Arguments go to ops_bench.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build
ZLIB=""
if [ -f /usr/include/zlib.h ]; then ZLIB="-DPD_HAVE_ZLIB -lz"; fi
# shellcheck disable=SC2086
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I. \
    $(pkg-config --cflags openblas) -o build/ops_bench bench/ops_bench.c runtime/cpu/ops_*.c \
    runtime/init.c runtime/optim.c runtime/base/rng.c runtime/data.c \
    $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) $ZLIB -lm
OPENBLAS_NUM_THREADS=1 exec build/ops_bench "$@"
