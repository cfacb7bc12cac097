"""The grader package's imports go one way: each module imports only modules below it, never a private name.

Read from the source with `ast`, so a cycle broken by an import inside a function is caught too.
"""
import ast
import os

import pytest

GRADER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "w2s", "grader")
LAYERS = ["__init__", "extraction", "equivalence", "normalization", "sympy_check"]  # top to bottom
LAZY_IN_FUNCTIONS = ("sympy", "resource")  # imports that run only inside a sympy helper process


def _grader_module(node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str | None:
    """The package module an import names (`__init__` for the package itself), or None outside the package."""
    if isinstance(node, ast.Import):
        parts = alias.name.split(".")
    elif node.level:  # `from .normalization import x`, `from . import sympy_check`
        parts = ["w2s", "grader"] + (node.module.split(".") if node.module else [alias.name])
    else:
        parts = node.module.split(".") + ([alias.name] if node.module == "w2s.grader" else [])
    if parts[:2] != ["w2s", "grader"]:
        return "w2s" if parts[0] == "w2s" else None
    return parts[2] if len(parts) > 2 and parts[2] in LAYERS else "__init__"  # `from w2s.grader import grade`


def layer_violations(module: str, source: str) -> list[str]:
    """What in `source` (the text of w2s/grader/<module>.py) breaks the one-way rule, one line each."""
    tree = ast.parse(source)
    rank = LAYERS.index(module)
    found, imported_modules = [], set()
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    in_function = {id(inner) for function in functions for inner in ast.walk(function)}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        if id(node) in in_function and not (names or "").startswith(LAZY_IN_FUNCTIONS):
            found.append(f"{module}:{node.lineno}: import inside a function")
        for alias in node.names:
            target = _grader_module(node, alias)
            if target is not None and module == "sympy_check":  # run as a script in the helper: no w2s there
                found.append(f"{module}:{node.lineno}: imports {alias.name} (this module imports no w2s)")
            if target is None or target == "w2s" or module == "sympy_check":
                continue
            if LAYERS.index(target) <= rank:
                found.append(f"{module}:{node.lineno}: imports {target}, which is not below {module}")
            if isinstance(node, ast.ImportFrom) and alias.name.startswith("_"):
                found.append(f"{module}:{node.lineno}: imports the private name {alias.name}")
            if isinstance(node, ast.ImportFrom) and alias.name in LAYERS or isinstance(node, ast.Import):
                imported_modules.add(alias.asname or alias.name.split(".")[-1])
    for node in ast.walk(tree):  # `sympy_check._pool`: a private name reached through a module
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in imported_modules and node.attr.startswith("_")):
            found.append(f"{module}:{node.lineno}: uses the private name {node.value.id}.{node.attr}")
    return found


def test_the_package_holds_exactly_the_layers():
    modules = sorted(name[:-3] for name in os.listdir(GRADER) if name.endswith(".py"))
    assert modules == sorted(LAYERS)  # a new module must take its place in LAYERS


@pytest.mark.parametrize("module", LAYERS)
def test_each_module_imports_only_modules_below_it(module):
    with open(os.path.join(GRADER, f"{module}.py"), encoding="utf-8") as f:
        assert layer_violations(module, f.read()) == []


@pytest.mark.parametrize("module,source,problem", [
    ("normalization", "from w2s.grader.extraction import extract_answer", "imports extraction, which is not below"),
    ("equivalence", "from w2s.grader import extraction", "imports extraction, which is not below"),
    ("equivalence", "from w2s.grader import is_equiv", "imports __init__, which is not below"),
    ("__init__", "from w2s.grader.equivalence import _is_equiv_cached", "imports the private name _is_equiv_cached"),
    ("extraction", "from .normalization import _braced", "imports the private name _braced"),
    ("equivalence", "from w2s.grader import sympy_check\nsympy_check._pool", "uses the private name sympy_check._pool"),
    ("extraction", "def f():\n    from w2s.grader.equivalence import is_equiv", "import inside a function"),
    ("sympy_check", "from w2s.errors import UserError", "this module imports no w2s"),
])
def test_the_check_finds_each_kind_of_violation(module, source, problem):
    assert any(problem in line for line in layer_violations(module, source))
