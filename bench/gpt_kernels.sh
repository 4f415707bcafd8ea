#!/usr/bin/env bash
# gpt_kernels.sh: CPU time of the attention, gelu and layernorm kernels (forward + backward at
# gpt_char's shapes), this checkout's against BASE's (a git revision; default d4a0618, the last
# commit before they were rewritten: per-row sgemv/sger attention, libm tanhf, double sums),
# interleaved in one run of bench/gpt_kernels.c, one BLAS thread. Prints both and the ratio.
# Usage: bench/gpt_kernels.sh [BASE [REPS]]   (a git checkout; installs nothing)
set -eu
cd "$(dirname "$0")/.."
base=${1:-d4a0618}
reps=${2:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in ops_attention ops_elementwise ops_norm; do # BASE's kernels, renamed old_*
    git show "$base:runtime/cpu/$f.c" | sed 's/\bpdrt_/old_/g' >"$tmp/old_$f.c"
done
# shellcheck disable=SC2046
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -I. -Iruntime/cpu \
    $(pkg-config --cflags openblas) -o "$tmp/gpt_kernels" bench/gpt_kernels.c \
    "$tmp"/old_*.c runtime/cpu/ops_attention.c runtime/cpu/ops_elementwise.c \
    runtime/cpu/ops_norm.c runtime/base/rng.c \
    $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm
echo "bench gpt_kernels: base $base vs $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), $reps reps, load $(cut -d' ' -f1 /proc/loadavg)"
OPENBLAS_NUM_THREADS=1 "$tmp/gpt_kernels" "$reps"
