"""Which optional extra installs a module, and the one line that tells a user to install it.

pyproject's ``[project.optional-dependencies]`` is the only list of what is optional. It is read
here from dipcli's installed metadata (``importlib.metadata.requires``), never copied, so that a
message cannot name an extra that does not install the module: the product (``--plot``,
``--cluster``), the benchmarks and the tests all say ``needs matplotlib: pip install
'dipcli[plot]'`` from this one place.

:func:`required_imports` reads a script's imports (``ast``) to tell which optional modules it
cannot run without, so that the benchmarks can refuse up front, and the tests skip, without a
hand-kept list of who needs what.
"""

from __future__ import annotations

import ast
import importlib.util
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# Distributions whose import name is not their own (normalised) name; the rest import as named.
# tests/test_extras.py checks each installed optional distribution against what it really provides.
IMPORT_NAMES = {"opencv-python-headless": "cv2"}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


@dataclass(frozen=True)
class OptionalDependency:
    """An optional distribution: its name as pip knows it and the extras that install it."""

    distribution: str
    extras: tuple[str, ...]


@cache
def optional_modules() -> dict[str, OptionalDependency]:
    """Import name → the optional distribution behind it, from dipcli's own metadata.

    A requirement is optional when its marker holds for some extra and not without one (a marker
    such as ``python_version < "3.11"`` alone would hold for both). The imports are here, not at
    the top, because only a missing module needs them and every `dip` start imports this file.
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    extras = metadata.metadata("dipcli").get_all("Provides-Extra") or []
    found: dict[str, tuple[str, list[str]]] = {}
    for line in metadata.requires("dipcli") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        for extra in extras:
            if req.marker.evaluate({"extra": extra}):
                found.setdefault(module, (req.name, []))[1].append(extra)
    return {module: OptionalDependency(dist, tuple(names)) for module, (dist, names) in found.items()}


@cache
def extra_sizes() -> Counter[str]:
    """How many distributions each extra installs."""
    return Counter(extra for opt in optional_modules().values() for extra in opt.extras)


def have(module: str) -> bool:
    """Whether ``module`` (a top-level import name) can be imported, without importing it."""
    return importlib.util.find_spec(module) is not None


def extra_for(module: str, prefer: str | None = None) -> str:
    """The extra to install for ``module``: ``prefer`` if it installs it (the benchmarks name
    ``bench``, which holds all they need), else the smallest extra that does (the least to install).

    Raises ValueError for a module that no extra installs: code that treats a module as
    optional must declare it in pyproject.
    """
    opt = optional_modules().get(module)
    if opt is None:
        raise ValueError(f"{module} is not an optional dependency of dipcli "
                         "(pyproject's [project.optional-dependencies])")
    if prefer in opt.extras:
        return prefer
    return min(opt.extras, key=lambda extra: (extra_sizes()[extra], extra))


def needs(module: str, who: str = "", prefer: str | None = None) -> str:
    """The one line that says what to install for ``module``: ``[who ]needs matplotlib: pip
    install 'dipcli[plot]'``. Without dipcli's metadata (a source tree never installed) it names
    the module alone."""
    from importlib import metadata

    try:
        extra = extra_for(module, prefer)
    except metadata.PackageNotFoundError:
        return f"{who} needs {module}: pip install {module}".lstrip()
    return f"{who} needs {optional_modules()[module].distribution}: pip install 'dipcli[{extra}]'".lstrip()


def missing(modules: set[str]) -> list[str]:
    """Those of ``modules`` that cannot be imported here, sorted."""
    return sorted(m for m in modules if not have(m))


def required_imports(script: Path) -> set[str]:
    """The optional modules that ``script`` cannot run without.

    Every import of an optional module counts (at module level or inside a function: a study
    that fails in its last step, the figure, has still wasted its hours), except one inside
    ``try: … except ImportError`` (the script carries on without it) or ``if TYPE_CHECKING:``.
    Imports of modules beside the script (benchmarks share helpers: ``from quality import …``)
    are followed, since the helpers they take may be the ones that need the module.
    """
    return _required(Path(script).resolve(), set())


def _required(script: Path, seen: set[Path]) -> set[str]:
    seen.add(script)
    tree = ast.parse(script.read_text(), filename=str(script))
    exempt = {id(node) for block in _exempt_blocks(tree) for stmt in block for node in ast.walk(stmt)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for top in {name.partition(".")[0] for name in names}:
            sibling = script.parent / f"{top}.py"
            if sibling.is_file():
                if sibling not in seen:
                    found |= _required(sibling, seen)
            elif top in optional_modules():
                found.add(top)
    return found


def _exempt_blocks(tree: ast.AST) -> list[list[ast.stmt]]:
    """Bodies whose imports a script can do without: ``try`` blocks that catch ImportError, and
    ``if TYPE_CHECKING:``."""
    blocks = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h.type) for h in node.handlers):
            blocks.append(node.body)
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            blocks.append(node.body)
    return blocks


def _catches_import_error(kind: ast.expr | None) -> bool:
    if isinstance(kind, ast.Tuple):
        return any(_catches_import_error(k) for k in kind.elts)
    return isinstance(kind, ast.Name) and kind.id in IMPORT_ERRORS
