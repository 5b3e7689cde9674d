"""Every public function and class (each package's ``__all__``) has a numpy-style docstring
with Parameters and Returns (Attributes for data classes), and the API reference of the
documentation site has a page for every package."""

import importlib
import inspect
from pathlib import Path

import pytest

PACKAGES = ["core", "linalg", "rfa", "theory", "ntk", "svm", "lowrank", "experiment"]
ROOT = Path(__file__).parents[2]


def _public(package):
    module = importlib.import_module(f"rfattn.{package}")
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


def _takes_arguments(obj) -> bool:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return True
    return any(p not in ("self",) for p in params)


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_has_numpy_sections(package):
    missing = []
    for name, obj in _public(package):
        doc = inspect.getdoc(obj) or ""
        sections = [s for s in ("Parameters", "Returns", "Attributes")
                    if f"\n{s}\n---" in f"\n{doc}"]
        if inspect.isclass(obj) and issubclass(obj, Exception):
            ok = bool(doc)
        elif inspect.isclass(obj):
            ok = not _takes_arguments(obj) or {"Parameters", "Attributes"} & set(sections)
        else:
            ok = "Returns" in sections and (not _takes_arguments(obj) or "Parameters" in
                                            sections)
        if not ok or len(doc.splitlines()) < 2 and _takes_arguments(obj):
            missing.append(name)
    assert not missing, f"rfattn.{package}: no numpy Parameters/Returns in {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_has_an_api_page(package):
    page = ROOT / "docs" / "api" / f"{package}.md"
    assert f"::: rfattn.{package}" in page.read_text()
