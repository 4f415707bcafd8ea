#!/usr/bin/env bash
# lstm_char.sh: tokens/s of our LSTM language models against PyTorch's nn.LSTM on one thread, in
# one run of this script (so the machine's load is shared alike), on the Shakespeare corpus:
#   - the anchor's shape (../shared/anchors/cpu/torch_lstm_char.py: embedding 128, 2 LSTM layers
#     of 256, untied linear head, no dropout, context 128, batch 32, Adam, clipping 1.0) as our
#     YAML (written here from models/lstm_lm.yaml), one process (--single), one thread, against
#     the anchor's own script (--bench STEPS, 1 thread, timed after 3 untimed steps);
#   - models/lstm_lm.yaml (3 layers 256, 192, 128, dropout 0.1, tied decoder) as one process and
#     as the 2-stage 1F1B pipeline (pdplan -n 2 --straight, one rank and one thread per stage).
# Ours: tokens/s = steps x 32 x 128 / train_s from run/summary.json (the training loop alone;
# evaluation off). Usage: bench/lstm_char.sh [STEPS (default 40)]. Needs data/shakespeare_char
# (make deps) or $PD_DATA_DIR; PyTorch (python3-torch) for its line.
set -eu
cd "$(dirname "$0")/.."
steps=${1:-40}
export OPENBLAS_NUM_THREADS=1
data=${PD_DATA_DIR:-$PWD/data}/shakespeare_char
[ -f "$data/train.bin" ] || { echo "bench lstm_char: no $data (make deps)" >&2; exit 1; }
anchor=${TORCH_LSTM_CHAR:-../shared/anchors/cpu/torch_lstm_char.py}
[ -f "$anchor" ] || anchor=/work/shared/anchors/cpu/torch_lstm_char.py
make -s -j2 bin/pdplan runtime
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
# the anchor's shape: lstm_lm's header and first layers, two LSTMs of 256, its own head
{ sed -n '/^pd: 1/,/^layers:/p' models/lstm_lm.yaml | sed 's/^name: lstm_lm/name: lstm_anchor/'
  cat <<'YAML'
  - {name: emb, op: embedding, num_embeddings: 88, embedding_dim: 128}
  - {name: lstm0, op: lstm, hidden_size: 256}
  - {name: lstm1, op: lstm, hidden_size: 256}
  - {name: head, op: linear, out_features: 88}
YAML
} >"$gen/anchor.yaml"
bin/pdplan "$gen/anchor.yaml" -n 1 -q -o "$gen/anchor"
bin/pdplan models/lstm_lm.yaml -n 2 -b 1e10 --straight -q -o "$gen/pipe"
make -s -C "$gen/anchor"
make -s -C "$gen/pipe"
tps() { grep -o '"tokens_per_s": [0-9.]*' "$1/run/summary.json" | grep -o '[0-9.]*$'; }
run() { # gendir label, extra pdlaunch args: prints tokens/s
    local g=$1 label=$2; shift 2
    rm -rf "$g/run"
    scripts/pdlaunch "$g" --steps "$steps" --no-eval --no-trace --log-every "$steps" "$@" \
        >"$gen/$label.log" 2>&1 || { cat "$gen/$label.log"; echo "bench: $label failed" >&2; exit 1; }
    printf '%.0f\n' "$(tps "$g")"
}
echo "bench lstm_char: $steps steps of 32 x 128 tokens, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
ours_anchor=$(run "$gen/anchor" anchor --single)
torch="" py=""
for p in /usr/bin/python3 python3; do # Debian's python3-torch is /usr/bin/python3's
    "$p" -c 'import torch' 2>/dev/null && { py=$p; break; }
done
if [ -n "$py" ]; then
    "$py" "$anchor" 1 --bench "$steps" --data "$data" >"$gen/torch.log" 2>&1 &&
        torch=$(sed -n 's/.*tokens\/s=\([0-9]*\).*/\1/p' "$gen/torch.log")
fi
single=$(run "$gen/pipe" single --single)
pipe=$(run "$gen/pipe" pipeline)
printf "  anchor's shape, ours (--single, 1 thread):    %7s tokens/s\n" "$ours_anchor"
if [ -n "$torch" ]; then
    printf "  anchor's shape, PyTorch %s (1 thread):  %7s tokens/s\n" \
        "$("$py" -c 'import torch; print(torch.__version__)')" "$torch"
    awk -v o="$ours_anchor" -v t="$torch" 'BEGIN { printf "  ours / PyTorch (one thread each):             %7.2fx\n", o / t }'
else
    echo "  PyTorch: not measured ($(tail -1 "$gen/torch.log" 2>/dev/null || echo 'no python3 with torch'))"
fi
printf "  lstm_lm, one process (--single, 1 thread):    %7s tokens/s\n" "$single"
printf "  lstm_lm, 2-stage 1F1B pipeline (2 ranks):     %7s tokens/s\n" "$pipe"
awk -v s="$single" -v p="$pipe" 'BEGIN { printf "  pipeline / one process:                       %7.2fx\n", p / s }'
echo "load after: $(cut -d' ' -f1 /proc/loadavg)"
