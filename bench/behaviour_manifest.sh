#!/usr/bin/env bash
# behaviour_manifest.sh: prints one line per observable output of the tools (every plan.yaml and
# schedule of the bundled models and golden plans, the weights after short trainings under each
# schedule, with replicas and on a DAG, and the checkpoint files), as "sha256  name". Two
# checkouts that compute the same thing print the same manifest, whatever their generated stage
# sources look like: a refactoring's proof that behaviour is unchanged is
#   bash bench/behaviour_manifest.sh >before.txt   (at the old commit)
#   bash bench/behaviour_manifest.sh >after.txt    (at the new one)
#   diff before.txt after.txt
# Needs bin/pdplan and build/libpdrt.a (make). Takes about 10 seconds on 2 cores.
set -eu
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
GT=tests/data/graphtxt_cli
h() { sha256sum "$1" | cut -c1-16; }
hplan() { grep -v '^ *seconds:' "$1" | sha256sum | cut -c1-16; } # the solver's time varies

plan() { # name, pdplan arguments...
    local name=$1; shift
    bin/pdplan "$@" -o "$T/$name" -q >/dev/null
    echo "$(hplan "$T/$name/plan.yaml")  plan $name"
    [ -f "$T/$name/schedule" ] && echo "$(h "$T/$name/schedule")  schedule $name"
    return 0
}
plan fmnist.n2 models/fmnist_cnn.yaml -n 2
plan fmnist.n4s models/fmnist_cnn.yaml -n 4 --straight
plan fmnist.n2s.flush models/fmnist_cnn.yaml -n 2 --straight --schedule flush
plan fmnist.2x2c models/fmnist_cnn.yaml -n 2 2 -b 1e10 1e9 --compat pipedream
plan vgg16.n4 models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 -b 2.5e10
plan vgg16.4x4c models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 4 4 -b 1e11 1.25e10 --compat pipedream
plan alexnet.n8 models/alexnet.yaml -p profiles/alexnet.h200.yaml -n 8 -b 1e10
plan alexnet.2x4m models/alexnet.yaml -p profiles/alexnet.h200.yaml -n 2 4 -b 1e11 1e10 --memory 8e9
plan resnet50.n4 models/resnet50.yaml --device h200 -n 4 -b 1e11
plan resnet50.v100.4x4 models/resnet50.yaml -p profiles/resnet50.v100.yaml -n 4 4 -b 2e10 1.25e9
plan gnmt8.n4 models/gnmt8.yaml -p profiles/gnmt8.v100.yaml -n 4 -b 1e10 --no-codegen
plan gnmt16.n8 models/gnmt16.yaml -p profiles/gnmt16.v100.yaml -n 8 -b 1e10 --no-codegen
plan vgg16.cluster-a models/vgg16.yaml -p profiles/vgg16.h200.yaml -c clusters/cluster-a.yaml
plan gt.branchy.n4 $GT/branchy.txt -n 4 -b 3.125e9
plan gt.diamond.n3 tests/data/graphtxt/diamond.txt -n 3 -b 1e9
plan gt.chain.2x2c $GT/chain.txt -n 2 2 -b 1e10 1e9 --compat pipedream
plan fmnist.cuda.n2 models/fmnist_cnn.yaml -n 2 --straight --backend cuda

train() { # name, plan folder, pdlaunch arguments...
    local name=$1 dir=$2; shift 2
    make -s -C "$dir" >/dev/null
    scripts/pdlaunch "$dir" --data synthetic --synthetic-n 512 --steps 12 --no-eval --no-trace \
        --log-every 1000 --save "$T/w.$name" "$@" >/dev/null
    for f in "$T/w.$name"/*.f32; do echo "$(h "$f")  weights $name $(basename "$f")"; done
    if [ -d "$T/ck.$name" ]; then
        (cd "$T/ck.$name" && find . -type f | LC_ALL=C sort | while read -r f; do
            echo "$(sha256sum "$f" | cut -c1-16)  checkpoint $name ${f#./}"; done)
    fi
}
train 1f1b "$T/fmnist.n2s.flush" --schedule 1f1b
train flush "$T/fmnist.n2s.flush"
train gpipe "$T/fmnist.n2s.flush" --schedule gpipe
train single "$T/fmnist.n2s.flush" --single
train emulate "$T/fmnist.n2s.flush" --emulate --schedule 1f1b
train replicas "$T/fmnist.n2"
train ckpt "$T/fmnist.n2s.flush" --schedule 1f1b --checkpoint-every 5 --checkpoint-dir "$T/ck.ckpt"
bin/pdplan tests/data/models/tiny.yaml -n 3 --straight -o "$T/tiny" -q >/dev/null 2>&1 &&
    train tiny3 "$T/tiny"
bin/pdplan tests/data/models/tiny_dag.yaml -n 3 --straight -o "$T/dag3" -q >/dev/null
echo "$(hplan "$T/dag3/plan.yaml")  plan dag3"
train dag3 "$T/dag3" --schedule 1f1b
train dag3.flush "$T/dag3" --schedule flush
exit 0
