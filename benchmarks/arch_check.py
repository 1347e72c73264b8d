"""The package's shape, measured from its own source (ast, nothing imported): the import graph of
nstbench/ and its cycles, how deep its layers go, every function's length and parameter count, and
the top-level names defined in more than one module. tests/test_architecture.py asserts the targets
of issue 21 on the same numbers; `python benchmarks/arch_check.py` prints them.

Definitions (the test uses the same ones):
- an import is any `import nstbench.x`, `from nstbench.x import ...`, `from .x import ...` or
  `from . import x` anywhere in a module, inside functions too (a deferred import is still a
  dependency; it only moves when it is paid);
- a cycle is a strongly connected component of more than one module; a back-edge is an import
  between two modules of one cycle (however the layers are drawn, such an import points up);
- depth is the longest chain of imports once each cycle is counted as one node;
- a function's length is its lines from `def` to its last line (decorators not counted); its
  parameters are every name it takes, `*args` and `**kwargs` included, `self` and `cls` not;
- a duplicate name is a public top-level name (a def, class or assignment, not an import) in two
  modules; dunders, `_private` helpers (module-local by convention) and `main` (every script's
  entry point) are left out.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nstbench"


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name relative to the package ("cli", "config.presets") -> file; __init__ is the package itself ("")."""
    out = {}
    for p in sorted(package.rglob("*.py")):
        parts = list(p.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The module `name` (dotted, relative to the package) names, or the package it lies in."""
    while name not in mods and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in mods else None


def imports_of(mod: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The package's modules that `mod` imports (the package __init__ itself is left out: it only
    holds the version and the lazy API)."""
    is_pkg = path.name == "__init__.py"
    here = mod.split(".") if mod else []
    base = here if is_pkg else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name[len("nstbench.") :] for a in node.names if a.name.startswith("nstbench.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(parent + ([node.module] if node.module else []))
            elif node.module and (node.module == "nstbench" or node.module.startswith("nstbench.")):
                prefix = node.module[len("nstbench.") :] if node.module != "nstbench" else ""
            else:
                continue
            # `from . import x` / `from .pkg import mod` import modules; otherwise the module itself
            for a in node.names:
                sub = f"{prefix}.{a.name}" if prefix else a.name
                targets.append(sub if sub in mods else prefix)
        for t in targets:
            r = _resolve(t, mods)
            if r is not None and r != mod and r != "":
                out.add(r)
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    mods = modules(package)
    return {m: imports_of(m, p, mods) for m, p in mods.items() if m != ""}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):  # recursion depth is bounded by the module count (a few dozen)
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def back_edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    comp = {m: i for i, c in enumerate(cycles(graph)) for m in c}
    return sorted((a, b) for a, bs in graph.items() for b in bs if a in comp and comp.get(b) == comp[a])


def depth(graph: dict[str, set[str]]) -> int:
    """Layers of imports: 1 for a module that imports none of the package's, each cycle one node."""
    comp = {m: i for i, c in enumerate(cycles(graph)) for m in c}
    node = {m: comp.get(m, m) for m in graph}
    members = defaultdict(set)
    for m in graph:
        members[node[m]].add(m)
    memo = {}

    def d(n):
        if n not in memo:
            deps = {node[b] for m in members[n] for b in graph[m]} - {n}
            memo[n] = 1 + max((d(x) for x in deps), default=0)
        return memo[n]

    return max(d(n) for n in members)


def functions(package: Path = PACKAGE) -> list[tuple[str, int, int]]:
    """(module:qualified name, lines, parameters) of every function and method, nested ones too."""
    out = []
    for mod, path in modules(package).items():

        def walk(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = child.args
                    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
                    n = len([x for x in names if x not in ("self", "cls")])
                    q = f"{prefix}{child.name}"
                    out.append((f"{mod or '__init__'}:{q}", child.end_lineno - child.lineno + 1, n))
                    walk(child, q + ".")
                elif isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")
                else:
                    walk(child, prefix)

        walk(ast.parse(path.read_text(), str(path)), "")
    return out


def _defined_names(path: Path) -> set[str]:
    """Every top-level def, class and assigned name of a module, private ones included."""
    names = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def top_level_names(path: Path) -> set[str]:
    return {n for n in _defined_names(path) if not n.startswith("_") and n != "main"}


def duplicate_names(package: Path = PACKAGE) -> dict[str, list[str]]:
    where = defaultdict(list)
    for mod, path in modules(package).items():
        for n in top_level_names(path):
            where[n].append(mod or "__init__")
    return {n: sorted(ms) for n, ms in sorted(where.items()) if len(ms) > 1}


def reexported_imports(roots=("nstbench", "tests", "experiments", "benchmarks", "docs")) -> list[str]:
    """Imports of a package name from a module that does not define it (it only imports it in
    turn): each name should have one import path, its defining module's."""
    mods = modules()
    defined = {m: _defined_names(p) for m, p in mods.items()}
    out = []
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            in_pkg = path.is_relative_to(PACKAGE)
            base = list(path.relative_to(PACKAGE).parts[:-1]) if in_pkg else []  # the file's package
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.ImportFrom) or not node.module:
                    continue
                if node.level and in_pkg:  # `from .x`, `from ..pkg.x`: relative to the file's package
                    mod = ".".join(base[: len(base) - (node.level - 1)] + [node.module])
                elif node.level == 0 and node.module.startswith("nstbench."):
                    mod = node.module[len("nstbench.") :]
                else:
                    continue
                for a in node.names:
                    if mod in defined and f"{mod}.{a.name}" not in mods and a.name not in defined[mod]:
                        out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {a.name} from {mod}")
    return out


def main() -> None:
    g = import_graph()
    fs = functions()
    print(f"modules: {len(g)}; imports: {sum(map(len, g.values()))}; depth: {depth(g)}")
    cs = cycles(g)
    print(f"cycles: {len(cs)}")
    for c in cs:
        print("  " + " <-> ".join(c))
    be = back_edges(g)
    print(f"imports inside cycles (back-edges): {len(be)}")
    for a, b in be:
        print(f"  {a} -> {b}")
    long = sorted((f for f in fs if f[1] > 80), key=lambda f: -f[1])
    print(f"functions over 80 lines: {len(long)}; longest: {max(fs, key=lambda f: f[1])}")
    for f in long:
        print(f"  {f[1]:4d} lines  {f[0]}")
    many = sorted((f for f in fs if f[2] > 8), key=lambda f: -f[2])
    print(f"functions with more than 8 parameters: {len(many)}; most: {max(fs, key=lambda f: f[2])}")
    for f in many:
        print(f"  {f[2]:4d} params {f[0]}")
    r = reexported_imports()
    print(f"imports through a module that does not define the name: {len(r)}")
    for line in r:
        print(f"  {line}")
    d = duplicate_names()
    print(f"top-level names defined in more than one module: {len(d)}")
    for n, ms in d.items():
        print(f"  {n}: {', '.join(ms)}")


if __name__ == "__main__":
    sys.exit(main())
