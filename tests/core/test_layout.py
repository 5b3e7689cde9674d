"""The house plan: imports go one way (theory -> lenses -> linalg -> core), no lens imports
another lens except the one documented bridge, each lens (and the theory) exposes the same
contract (a :class:`~rfattn.core.study.Study`), and the harness finds no lens by a string."""

import ast
import importlib
from pathlib import Path

import pytest

from rfattn.core.study import JobSettings, Study

PACKAGE = Path(__file__).resolve().parents[2] / "rfattn"
LENSES = ("rfa", "svm", "lowrank", "ntk")
FLOORS = {"core": set(), "linalg": {"core"}, "experiment": {"core"},
          **{lens: {"core", "linalg"} for lens in LENSES},
          "theory": {"core", "linalg", "rfa", "ntk"}}  # predictions for the lenses' models
#: the value-only attention module of the NTK lens, whose NTK is the RFA kernel
BRIDGES = {("ntk/networks.py", "rfa"), ("ntk/attention_study.py", "rfa")}


def imported_floors(path: Path) -> set[str]:
    """The rfattn subpackages a module imports (relative or absolute imports)."""
    module = path.relative_to(PACKAGE).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(module[:-node.level])
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("rfattn."):
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                found.add(parts[0])
            else:  # "from .. import x": x may be a subpackage
                found |= {alias.name for alias in node.names if (PACKAGE / alias.name).is_dir()}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("rfattn.")}
    return found - {module[0], "__init__"}


def import_graph() -> dict[str, set[str]]:
    """Module (relative path) -> the other rfattn floors it imports."""
    return {str(p.relative_to(PACKAGE)): imported_floors(p)
            for p in sorted(PACKAGE.rglob("*.py")) if p.parent != PACKAGE}


def test_imports_go_one_way_and_lenses_meet_only_at_the_bridge():
    graph = import_graph()
    assert graph, "no modules found"
    wrong = {}
    for module, floors in graph.items():
        floor = module.split("/")[0]
        allowed = FLOORS[floor] | {lens for path, lens in BRIDGES if path == module}
        if floors - allowed:
            wrong[module] = sorted(floors - allowed)
    assert not wrong, f"imports against the house plan: {wrong}"
    bridge_used = {(m, f) for m, floors in graph.items() for f in floors
                   if f in LENSES and m.split("/")[0] in LENSES}
    assert bridge_used == BRIDGES


@pytest.mark.parametrize("lens", LENSES + ("theory",))
def test_every_lens_has_the_same_contract(lens):
    module = importlib.import_module(f"rfattn.{lens}.study")
    package = importlib.import_module(f"rfattn.{lens}")
    study = module.STUDY
    assert isinstance(study, Study) and study.name == lens
    assert package.STUDY is study and f"run_{lens}_job" in package.__all__
    classes = list(study.settings.values()) if study.kinds else [study.settings]
    for cls in classes:  # the cost model is the settings' own
        assert issubclass(cls, JobSettings), cls
        for method in ("estimate_memory", "estimate_seconds"):
            assert getattr(cls, method) is not getattr(JobSettings, method), (cls, method)
    for name in package.__all__:
        assert not name.startswith("_") and hasattr(package, name), name


def test_the_harness_imports_no_lens_by_name_and_every_module_stays_short():
    harness = [p for p in (PACKAGE / "experiment").rglob("*.py")]
    assert harness
    for path in harness:
        text = path.read_text()
        assert "import_module" not in text and "importlib" not in text, path
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
