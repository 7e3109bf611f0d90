"""The package's import graph has no circles, and ``models/`` holds layers only (no file
reading, no weights loading, nn.Modules and the registry).

Reads every module of ``wsgcn_cli`` with :mod:`ast` and follows every import of another
module of the package, at module level and inside functions alike (an import deferred
into a function still ties the two modules together), then imports every module in a
fresh interpreter, in sorted and in reverse order.
"""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wsgcn_cli"

#: Names in ``models/`` that would mean reading or writing files.
FILE_IO = {"open", "safe_open", "load_file", "save_file", "read_bytes", "read_text", "write_bytes", "write_text"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(name: str, path: Path, known) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{a.name}" for a in node.names} & set(known)  # from package import module
            found |= subs
            if len(subs) < len(node.names):  # names defined in mod itself
                found.add(mod)
    return {m for m in found if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
    return out


def test_no_import_circles():
    mods = modules()
    graph = {name: imports_of(name, path, mods) for name, path in mods.items()}
    assert graph["wsgcn_cli.lifter"], "the graph should see the lifter's imports"
    assert cycles(graph) == []


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_models_hold_layers_only():
    """Nothing in models/ opens, reads or writes a file (weights come through wsgcn_cli.weights)."""
    for path in sorted((PACKAGE / "models").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(m.split(".")[0] in ("safetensors", "pickle", "json") for m in mods), (path, mods)
            assert name not in FILE_IO and not (name == "load" and "torch" in ast.unparse(node.func)), \
                (path.name, ast.unparse(node))


def test_models_define_no_loaders_and_layers_only():
    """No class in models/ loads weights (no ``from_weights`` or other loading method, no
    use of :mod:`wsgcn_cli.weights` or ``load_state_dict``): inference wrappers live outside
    (``pose2d/network.py``, ``temporal.py``, ``lifter.py``). Every class there but the
    registry's is an ``nn.Module``."""
    for path in sorted((PACKAGE / "models").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                assert "wsgcn_cli.weights" not in names, (path.name, ast.unparse(node))
            if isinstance(node, ast.Import):
                assert not any(a.name == "wsgcn_cli.weights" for a in node.names), (path.name, ast.unparse(node))
            if isinstance(node, ast.Attribute) or isinstance(node, ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                assert name not in ("load_model", "load_state_dict"), (path.name, ast.unparse(node))
            if not isinstance(node, ast.ClassDef):
                continue
            methods = [f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
            assert not [m for m in methods if m == "from_weights" or m.startswith("load")], (path.name, node.name)
            if path.name != "registry.py":
                assert any(ast.unparse(b) in ("nn.Module", "torch.nn.Module", "Module") for b in node.bases), \
                    f"{path.name}: class {node.name} is not an nn.Module"


def test_every_module_imports_in_a_fresh_interpreter_in_either_order():
    names = sorted(n for n in modules() if not n.endswith("__main__"))
    for order in (names, names[::-1]):
        code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
        r = subprocess.run([sys.executable, "-c", code, *order], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
