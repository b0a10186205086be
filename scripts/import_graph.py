"""The import graph of the package, checked against its layers.

    python -m scripts.import_graph            # summary: layer of each package, cross-package edges, cycles, breaches
    python -m scripts.import_graph --edges    # every module -> module edge

Every ``import`` counts, also those inside functions (found with ``ast``). Layers, bottom to top: ``utils``;
``data``, ``feats``; the model families ``units``, ``vocoders``, ``postnet``; ``softvc`` (which uses ``postnet``);
``tasks``, ``scoring``; ``bin``, ``hub``. A module may import its own package and anything lower, never higher, and
packages of one layer do not import each other. Every command-line entry point (``main``, ``__main__``) is in
``bin/``. Exit status 1 on an import cycle, a layer breach or an entry point outside ``bin/``.
"""

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "espnet_softvc"
LAYERS = {  # sub-package (or top-level module) -> rank; equal ranks may not import each other
    "utils": 0,
    "data": 1,
    "feats": 1,
    "units": 2,
    "vocoders": 2,
    "postnet": 2,
    "softvc": 3,
    "tasks": 4,
    "scoring": 4,
    "bin": 5,
    "hub": 5,
    "__init__": 6,
}


def modules(root):
    """{dotted module name: path} of every .py file of the package under ``root``."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name, path, known):
    """Package modules imported anywhere in ``path`` (module ``name``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # "from X import y" imports module X.y if there is one, else the name y of module X
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != PACKAGE:
                found.add(target)
    return found


def family(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def breaches(graph):
    """Edges that go up a layer or sideways between two families of one layer."""
    bad = []
    for source, targets in sorted(graph.items()):
        a = family(source)
        for target in sorted(targets):
            b = family(target)
            if a == b:
                continue
            if a not in LAYERS or b not in LAYERS or LAYERS[b] >= LAYERS[a]:
                bad.append((source, target))
    return bad


def entry_points_outside_bin(known):
    """Modules outside ``bin/`` with a command-line entry point (a ``main`` function or a ``__main__`` guard)."""
    found = []
    for name, path in sorted(known.items()):
        if family(name) == "bin":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            main_def = isinstance(node, ast.FunctionDef) and node.name == "main"
            guard = isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
            if main_def or guard:
                found.append(name)
                break
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--edges", action="store_true", help="print every edge")
    args = parser.parse_args(argv)
    known = modules(args.root)
    graph = {name: imports(name, path, known) for name, path in known.items()}
    edges = sum(len(t) for t in graph.values())
    print(f"{len(known)} modules, {edges} import edges (imports inside functions included)")
    between = {}
    for source, targets in graph.items():
        for target in targets:
            if family(source) != family(target):
                between.setdefault((family(source), family(target)), set()).add((source, target))
    print("packages by layer:", ", ".join(f"{k} {v}" for k, v in sorted(LAYERS.items(), key=lambda x: x[1])))
    print("package -> package (edges):")
    for (a, b), pairs in sorted(between.items(), key=lambda x: (LAYERS.get(x[0][0], 9), x[0])):
        print(f"  {a:9s} -> {b:9s} {len(pairs)}")
    if args.edges:
        for source, targets in sorted(graph.items()):
            for target in sorted(targets):
                print(f"  {source} -> {target}")
    found_cycles, bad = cycles(graph), breaches(graph)
    print(f"import cycles: {len(found_cycles)}")
    for component in found_cycles:
        print("  " + " <-> ".join(component))
    print(f"layer breaches: {len(bad)}")
    for source, target in bad:
        print(f"  {source} -> {target}")
    outside = entry_points_outside_bin(known)
    print(f"entry points outside bin/: {len(outside)}")
    for name in outside:
        print(f"  {name}")
    return 1 if found_cycles or bad or outside else 0


if __name__ == "__main__":
    sys.exit(main())
