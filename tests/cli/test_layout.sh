#!/usr/bin/env bash
# test_layout.sh: the layout's rules over the source tree (scripts/check_layout.py, described in
# docs/architecture.md): no source over 800 lines outside tests/ and fuzz/, no include circle
# between files or folders, includes one way between the concept folders, a purpose comment on top
# of every source.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
out=$(python3 scripts/check_layout.py 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^(PASS|FAIL) '
[ "$rc" -eq 0 ] || n_fail=$((n_fail + 1))
finish
