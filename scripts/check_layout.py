#!/usr/bin/env python3
"""check_layout.py: the layout's rules, checked over the source tree (docs/architecture.md).

Prints one PASS/FAIL line per rule:
  - no C or CUDA source outside tests/ and fuzz/ over 800 lines;
  - no include circle between files, nor between folders;
  - includes run one way between the concept folders: tools -> codegen -> planner ->
    runtime/schedule; runtime -> runtime/schedule; runtime/schedule includes nothing else of
    the project; planner never includes codegen or tools; runtime never includes planner,
    codegen or tools; nothing includes tools/ but tools/ and the tests;
  - every source starts with a comment saying what it is for.
Usage: scripts/check_layout.py [ROOT]   (exit 1 when a rule fails)
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
SOURCE_DIRS = ["planner", "codegen", "runtime", "tools", "bench", "tests", "fuzz", "templates"]
EXT = (".c", ".h", ".cu")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
failed = 0


def report(ok, name, why=""):
    global failed
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + why))
    failed += 0 if ok else 1


def sources():
    for top in SOURCE_DIRS:
        for d, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [x for x in dirs if x not in ("corpus", "golden", "data")]
            for f in files:
                if f.endswith(EXT):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


files = sorted(sources())
text = {f: open(os.path.join(ROOT, f), encoding="utf-8", errors="replace").read() for f in files}

# 1. size
long_files = [f"{f} ({t.count(chr(10))} lines)" for f, t in text.items()
              if not f.startswith(("tests/", "fuzz/")) and t.count("\n") > 800]
report(not long_files, "no source over 800 lines outside tests/ and fuzz/", ", ".join(long_files))


# 2. resolve includes: same folder first, then from the root
def resolve(f, inc):
    for cand in (os.path.join(os.path.dirname(f), inc), inc):
        cand = os.path.normpath(cand)
        if cand in text:
            return cand
    return None


graph = {f: [g for g in (resolve(f, i) for i in INCLUDE.findall(t)) if g] for f, t in text.items()}

# cycles (iterative DFS)
color, cycle = {}, None
for start in files:
    if cycle or color.get(start):
        continue
    stack = [(start, iter(graph[start]))]
    color[start] = 1
    path = [start]
    while stack and not cycle:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            color[node] = 2
            stack.pop()
            path.pop()
        elif color.get(nxt) == 1:
            cycle = path[path.index(nxt):] + [nxt]
        elif not color.get(nxt):
            color[nxt] = 1
            stack.append((nxt, iter(graph[nxt])))
            path.append(nxt)
report(cycle is None, "no include circle between files", " -> ".join(cycle or []))


# 3. folder rules: (includer prefix, forbidden included prefixes)
def area(f):
    if f.startswith("runtime/schedule/"):
        return "runtime/schedule"
    return f.split("/")[0]


RULES = {
    "runtime/schedule": ("planner", "codegen", "tools", "runtime"),
    "runtime": ("planner", "codegen", "tools"),
    "planner": ("codegen", "tools", "runtime"),
    "codegen": ("tools",),
}
bad = []
for f, incs in graph.items():
    a = area(f)
    for g in incs:
        b = area(g)
        if a == b:
            continue
        forbidden = RULES.get(a, ())
        if b == "runtime/schedule" and a != "runtime/schedule":
            continue  # everyone may take the schedule IR
        if any(b == x or b.startswith(x + "/") for x in forbidden) or \
                (b == "tools" and a not in ("tools", "tests")):
            bad.append(f"{f} includes {g}")
report(not bad, "includes run one way between concept folders", "; ".join(bad[:10]))

# 3b. no circle between the folders of one library (e.g. planner/model and planner/read)
def folder(f):
    return os.path.dirname(f)


fgraph = {}
for f, incs in graph.items():
    for g in incs:
        if folder(f) != folder(g):
            fgraph.setdefault(folder(f), set()).add(folder(g))


def reaches(a, b, seen=None):
    seen = seen or set()
    for n in fgraph.get(a, ()):
        if n == b:
            return True
        if n not in seen:
            seen.add(n)
            if reaches(n, b, seen):
                return True
    return False


loops = sorted({" <-> ".join(sorted((a, b))) for a in fgraph for b in fgraph[a] if reaches(b, a)})
report(not loops, "no circle between folders", "; ".join(loops[:10]))

# 4. a comment on top
bare = [f for f, t in text.items() if not re.match(r"\s*(/\*|//)", t)]
report(not bare, "every source opens with a comment saying what it is for", ", ".join(bare[:10]))

print(f"{len(files)} sources checked")
sys.exit(1 if failed else 0)
