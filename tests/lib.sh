# lib.sh: helpers for the shell tests in tests/cli. Source it; then call
#   pass NAME | fail NAME [why] | skip NAME why
#   expect_status WANT NAME cmd...   (runs cmd, output in $OUTPUT, checks its exit status)
#   same_dirs A B                    (the --save folders A and B hold the same weights)
#   close_dirs A B TOL [SKIP]        (every weight of A within TOL of B's, relative; prints the
#                                     worst; files matching the regex SKIP are not compared)
#   tiny_corpus DIR                  (a character corpus of 24 symbols for the token models)
#   tiny_tokens_model FILE [NAME] [OPTIMIZER-FIELDS]
#                                    (embedding -> linear head on tiny_corpus's symbols, context 8)
#   tiny_gpt_model FILE [NAME] [OPTIMIZER-FIELDS] [HEAD-FIELDS]
#                                    (one pre-norm GPT block on the same; e.g. ", clip_grad_norm:
#                                     0.5" and ", bias: false, tie: wte")
# and finish with `finish`. $PDPLAN is the sanitized pdplan, $ROOT the repository.
: "${ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${PDPLAN:=$ROOT/build/san/pdplan}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n_fail=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; n_fail=$((n_fail + 1)); }
skip() { echo "SKIP $1: $2"; }
expect_status() {
    local want=$1 name=$2; shift 2
    OUTPUT=$("$@" 2>&1); local rc=$?
    if [ "$rc" -eq "$want" ]; then return 0; fi
    fail "$name" "exit status $rc, wanted $want"
    printf '%s\n' "$OUTPUT" | head -20 | sed 's/^/  | /'
    return 1
}
finish() { [ "$n_fail" -eq 0 ]; }
# same_dirs A B: every weight file (*.f32, --save's) of folder A exists in B with the same bytes
same_dirs() {
    local f n=0
    for f in "$1"/*.f32; do
        [ -f "$f" ] || return 1
        cmp -s "$f" "$2/$(basename "$f")" || return 1
        n=$((n + 1))
    done
    [ "$n" -gt 0 ]
}
# close_dirs A B TOL [SKIP]: every weight of A's --save files within TOL of B's, relative to
# max(|b|, 1% of the tensor's largest); files whose path matches the regex SKIP (default
# running_: batch-norm running statistics, which are per replica) are not compared
close_dirs() {
    python3 - "$1" "$2" "$3" "${4:-running_}" <<'EOF'
import array, glob, os, re, sys
a_dir, b_dir, tol, skip = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
worst, n = 0.0, 0
for f in sorted(glob.glob(a_dir + "/*.f32")):
    if re.search(skip, f): continue
    a = array.array("f"); a.frombytes(open(f, "rb").read())
    b = array.array("f"); b.frombytes(open(os.path.join(b_dir, os.path.basename(f)), "rb").read())
    assert len(a) == len(b), f
    scale = max(abs(y) for y in b) or 1.0
    for x, y in zip(a, b):
        worst = max(worst, abs(x - y) / max(abs(y), 1e-2 * scale)); n += 1
print("worst relative difference %.3g over %d weights" % (worst, n))
sys.exit(0 if n > 0 and worst <= tol else 1)
EOF
}

# tiny_corpus DIR: a character corpus of 40 repeated sentences (24 symbols) made by
# scripts/prepare_shakespeare.py --text into DIR (train.bin, val.bin, vocab.txt), for the tiny
# token models of the CLI tests; status 0 when DIR/vocab.txt was written
tiny_corpus() {
    mkdir -p "$TMP/src"
    for i in $(seq 1 40); do
        echo "the cat sat on the mat. a dog ran to the cat; the mat was red."
    done >"$TMP/src/text.txt"
    python3 "$ROOT/scripts/prepare_shakespeare.py" --text "$1" "$TMP/src/text.txt" >/dev/null 2>&1 &&
        [ -s "$1/vocab.txt" ]
}

# tiny_tokens_model FILE [NAME] [OPTIMIZER-FIELDS]: a token model on tiny_corpus's 24 symbols
# (its corpus in corp/ beside FILE), context 8, batch 4: embedding with positions -> linear head
tiny_tokens_model() {
    cat >"$1" <<YAML
pd: 1
name: ${2:-tiny_tokens}
input: [8]
classes: 24
batch: 4
dataset: {kind: tokens, train: corp/train.bin, val: corp/val.bin, format: u8}
optimizer: {kind: adamw, lr: 0.01, weight_decay: 0.1${3:-}}
layers:
  - {name: wte, op: embedding, num_embeddings: 24, embedding_dim: 8, positions: 8, init_std: 0.02}
  - {name: head, op: linear, out_features: 24}
YAML
}

# tiny_gpt_model FILE [NAME] [OPTIMIZER-FIELDS] [HEAD-FIELDS]: one pre-norm GPT block (layernorm,
# fused q,k,v, causal attention, projection, residual; layernorm, gelu MLP, residual; final
# layernorm, head) on the same corpus and shape as tiny_tokens_model
tiny_gpt_model() {
    tiny_tokens_model "$1" "${2:-tiny_gpt}" "${3:-}"
    sed -i '/^  - {name: head,/d' "$1"
    cat >>"$1" <<YAML
  - {name: ln1, op: layernorm, eps: 1.0e-5}
  - {name: qkv, op: linear, out_features: 24}
  - {name: attn, op: attention, heads: 2}
  - {name: proj, op: linear, out_features: 8}
  - {name: add1, op: add, inputs: [proj, wte]}
  - {name: ln2, op: layernorm, eps: 1.0e-5}
  - {name: fc, op: linear, out_features: 32}
  - {name: gelu, op: gelu}
  - {name: out, op: linear, out_features: 8}
  - {name: add2, op: add, inputs: [out, add1]}
  - {name: lnf, op: layernorm, eps: 1.0e-5}
  - {name: head, op: linear, out_features: 24${4:-}}
YAML
}
