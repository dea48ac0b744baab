"""The layout of docs/architecture.md, checked on the source: data flow left to right, private
names kept inside their package, ``import rsa_bias`` light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rsa_bias"

#: Each layer may import only from the layers before it (and from the package's private
#: helpers ``rsa_bias._*``, ``rsa_bias.provenance`` and ``rsa_bias.config``).
LAYERS = ["tasks", "networks", "training", "store", "brain", "analysis", "plotting",
          "experiments", "cli"]
SHARED = {"_api", "_atomic", "_features", "_image_prep", "_linalg", "_lock", "_values",
          "_version", "provenance", "config", "executors", "interop"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(module, names, at module level) of every ``import`` / ``from ... import`` in a file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], id(node) in top))
        elif isinstance(node, ast.Import):
            out.extend((a.name, [], id(node) in top) for a in node.names)
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "rsa_bias" else None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: _name(p))
def test_data_flow_left_to_right(path):
    me = _layer(_name(path))
    if me not in LAYERS:
        return
    allowed = set(LAYERS[: LAYERS.index(me) + 1]) | SHARED
    for module, _, _ in _imports(path):
        other = _layer(module)
        if other is not None:
            assert other in allowed, f"{_name(path)} imports {module} (a later layer)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: _name(p))
def test_private_names_stay_in_their_package(path):
    """A private name (``_x``) is imported only from a module of the importer's own package;
    a private module (``_inputs``) only from inside the package that holds it."""
    me = _name(path)
    my_package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    for module, names, _ in _imports(path):
        if not module.startswith("rsa_bias"):
            continue
        owner = module.rsplit(".", 1)[0] if "." in module else module
        if "._" in module:  # a private module: only from inside the package that holds it
            holder = module.split("._", 1)[0]
            assert my_package.startswith(holder), f"{me} imports private module {module}"
        private = [n for n in names if n.startswith("_") and not n.endswith("__")]
        if private:
            home = module if (PACKAGE.parent / module.replace(".", "/")).is_dir() else owner
            assert my_package == home, f"{me} imports {private} from {module}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "analysis").rglob("*.py")),
                         ids=lambda p: _name(p))
def test_analysis_never_imports_torch_plotting_or_files(path):
    """Analysis is pure: no file I/O (store), no figures; torch only inside the functions
    of the ridge GPU backend, when a GPU is there."""
    for module, _, top in _imports(path):
        root = module.split(".")[0]
        assert root not in ("matplotlib", "seaborn", "nilearn"), f"{_name(path)}: {module}"
        assert module != "rsa_bias.store", f"{_name(path)} reads or writes files"
        if root == "torch":
            assert not top, f"{_name(path)} imports torch at module level"


def test_import_rsa_bias_is_light():
    code = ("import sys, rsa_bias; heavy = ('torch', 'nilearn', 'matplotlib', 'sklearn', "
            "'xarray', 'rsatoolbox', 'dask'); print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize(("statement", "absent"), [
    ("from rsa_bias import rdm, cka, compare_rdms", ("torch", "sklearn", "matplotlib")),
    ("from rsa_bias import RidgeEncoder", ("torch", "matplotlib", "nilearn")),
    ("import rsa_bias.brain", ("torch", "nilearn", "matplotlib")),
    ("import rsa_bias.plotting", ("torch", "nilearn")),
])
def test_measures_import_only_what_they_need(statement, absent):
    code = f"import sys; {statement}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"{statement} imports {out}"


def test_no_file_cites_a_design_file_the_repository_lacks():
    root = PACKAGE.parent
    for path in [*PACKAGE.rglob("*.py"), root / "README.md", *root.glob("docs/*.md")]:
        assert "DESIGN.md" not in path.read_text(), path


def test_no_source_file_over_400_lines():
    root = PACKAGE.parent
    for path in [*PACKAGE.rglob("*.py"), *(root / "tests").glob("*.py"),
                 *(root / "benchmarks").glob("*.py")]:
        n = len(path.read_text().splitlines())
        assert n <= 400, f"{path.relative_to(root)} has {n} lines; split it by what it holds"
