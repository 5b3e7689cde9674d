"""The documentation site's sources are consistent: every page and demo in the nav exists,
every figure a page shows is committed, and every claims table is generated from
figures/claims.json with one row per claim (``make docs`` builds the site itself)."""

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md"))


def _nav_entries(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _nav_entries(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _nav_entries(value)


def test_every_nav_entry_exists_and_every_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))
    entries = list(_nav_entries(config["nav"]))
    for entry in entries:
        where = ROOT / entry if entry.startswith("demos/") else ROOT / "docs" / entry
        assert where.exists(), entry
    pages = {str(p.relative_to(ROOT / "docs")) for p in PAGES}
    assert pages == {e for e in entries if e.endswith(".md")}
    demos = {f"demos/{p.name}" for p in (ROOT / "demos").glob("[0-9][0-9]_*.py")}
    assert demos == {e for e in entries if e.startswith("demos/")}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_figures_shown_are_committed(page):
    docs = ROOT / "docs"
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
        in_site = os.path.normpath(os.path.join(os.path.relpath(page.parent, docs), link))
        source = ROOT / in_site if in_site.startswith("figures/") else docs / in_site
        assert source.exists(), f"{page.name}: {link}"  # figures/ joins the site by the hook


def test_claims_tables_come_from_claims_json():
    pytest.importorskip("mkdocs")
    sys.path.insert(0, str(ROOT / "tools"))
    from docs_hooks import MARK, claims_table

    claims = json.loads((ROOT / "figures" / "claims.json").read_text())
    marked = [m for p in PAGES for m in MARK.findall(p.read_text())]
    assert sorted(marked) == sorted({c["study"] for c in claims})
    for study in marked:
        rows = claims_table(study).splitlines()[2:]
        ids = [c["id"] for c in claims if c["study"] == study]
        assert len(rows) == len(ids) and all(f"`{i}`" in r for i, r in zip(ids, rows))


def test_the_site_check_finds_raw_tex_that_mathjax_will_not_typeset():
    sys.path.insert(0, str(ROOT / "tools"))
    from check_site import raw_tex

    page = ('<div class="md-content"><p>stray $x_0$ and \\(y\\)</p>'
            '<p><span class="arithmatex">\\(z_1\\)</span></p>'
            '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown"><p>cell $\\Theta_t$</p></div>'
            '<pre><code>label=r"$\\alpha_1$"</code></pre>'
            '<div class="clipboard-copy-txt">ylabel=r"$\\beta^2$"</div>'
            '<p>costs $5 and $6</p></div>')
    found = raw_tex(page)
    assert [tex for tex, typeset in found if not typeset] == ["$x_0$", "\\("]
    assert sorted(tex for tex, typeset in found if typeset) == ["$\\Theta_t$", "\\("]
