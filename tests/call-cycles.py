#!/usr/bin/env python3
"""call-cycles.py OBJECTS|BUILD: no two files of libtidemark call each other.

For every object file of the library's parts (the per-layer object
libraries: tdm_base, tdm_core, ..., tdm_builtin; listed one a line in the
file OBJECTS, which the build writes, or else found under the build tree
BUILD, where a stale object of a deleted source would also count), the
symbols it defines and the ones it needs (nm). A file that needs a symbol
another defines depends on it; the check fails, naming each cycle and the
symbols that close it, when the files' dependencies go round in a circle
(a.c calls b.c and b.c calls a.c, or longer). Calls through a table a lower
file is handed (engine/mode.h's mode table, live/watch.h's backends and
their host table) are not references, and are how a lower file calls back.
Registered as the ctest `call-cycles`; exits 0 with a count when none.
"""
import collections
import glob
import os
import subprocess
import sys


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    if os.path.isfile(build):
        with open(build) as f:
            objs = sorted(line.strip() for line in f if line.strip())
    else:
        objs = sorted(o for o in glob.glob(
            build + "/**/CMakeFiles/tdm_*.dir/**/*.o", recursive=True)
            if "/tdm_test_main.dir/" not in o)
    if not objs:
        print(f"call-cycles: no object files of the library under {build}")
        return 2
    defs, needs = {}, {}
    for o in objs:
        name = o.split(".dir/", 1)[1][:-2]  # "engine/pass.c"
        out = subprocess.run(["nm", o], capture_output=True, text=True,
                             check=True).stdout
        d, u = set(), set()
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDBRC":
                d.add(f[2])
            elif len(f) == 2 and f[0] == "U":
                u.add(f[1])
        defs[name], needs[name] = d, u
    owner = {s: n for n, d in defs.items() for s in d}
    deps = collections.defaultdict(set)
    for n, u in needs.items():
        for s in u:
            if owner.get(s, n) != n:
                deps[n].add(owner[s])

    # Tarjan's strongly connected components.
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(defs):
        if v not in index:
            visit(v)
    for comp in cycles:
        print("call cycle: " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(deps[a] & set(comp)):
                syms = sorted(s for s in needs[a] if owner.get(s) == b)
                print(f"  {a} calls {b}: {', '.join(syms)}")
    if cycles:
        return 1
    edges = sum(len(v) for v in deps.values())
    print(f"call-cycles: {len(objs)} files, {edges} dependencies, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
