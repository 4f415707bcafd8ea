#!/usr/bin/env bash
# install-deps.sh: installs through apt whatever PipeDream-C needs and is missing, then reports
# the CUDA toolkit it finds. Safe to run again: it installs nothing that is already there.
set -eu
need=(build-essential pkg-config libyaml-dev libglpk-dev libopenblas-dev libopenmpi-dev
      openmpi-bin zlib1g-dev dataset-fashion-mnist
      clang libclang-rt-dev valgrind # these three: fuzzing and memcheck tests (docs/reliability.md)
      graphviz) # pdplan --draw renders its plan.dot to plan.svg with dot (optional)
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
if command -v nvcc >/dev/null 2>&1; then
    echo "deps: CUDA toolkit: $(nvcc --version | grep -o 'release [0-9.]*' | head -1) at $(dirname "$(dirname "$(command -v nvcc)")")"
elif [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "deps: CUDA toolkit at /usr/local/cuda (not on PATH)"
else
    echo "deps: no CUDA toolkit found: the CUDA backend will not build (the CPU backend does)"
fi
