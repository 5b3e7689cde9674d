"""MkDocs hooks of the documentation site (mkdocs.yml: ``hooks``).

- The demos (``demos/*.py``, rendered and executed by mkdocs-jupyter) and the committed quick
  figures (``figures/*.png``) join the site without being copied into ``docs/``.
- MathJax (``javascripts/mathjax/tex-svg-full.js``, from the ``django-static-mathjax`` package
  of the docs extra) is served with the site: math renders without network.
- ``<!-- claims: STUDY -->`` in a page becomes the table of that study's claims, read from
  ``figures/claims.json`` (written by ``make repro``): the verdicts are never retyped.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"<!--\s*claims:\s*(\w+)\s*-->")
MATHJAX = "javascripts/mathjax/tex-svg-full.js"


def mathjax_script() -> Path:
    """MathJax 3's TeX-to-SVG bundle (no fonts or extensions to fetch) from the installed
    ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MathJax is not installed: pip install -e '.[docs]' (it brings "
                           "django-static-mathjax)")
    path = Path(spec.submodule_search_locations[0]) / "static/mathjax/es5/tex-svg-full.js"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: reinstall django-static-mathjax")
    return path


@event_priority(100)  # before mkdocs-jupyter looks for the notebooks among the files
def on_files(files, config):
    for folder, pattern in (("demos", "[0-9][0-9]_*.py"), ("figures", "*.png")):
        for path in sorted((ROOT / folder).glob(pattern)):
            # a real file whose source folder is the repository (mkdocs-jupyter reads it there)
            files.append(File(f"{folder}/{path.name}", src_dir=str(ROOT),
                              dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    files.append(File.generated(config, MATHJAX, abs_src_path=str(mathjax_script())))
    return files


def _number(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def claims_table(study: str, claims_file: Path = ROOT / "figures" / "claims.json") -> str:
    """The markdown table of ``study``'s claims: origin, statement, measured value, verdict
    (``refuted`` for a failed lab claim, with its lesson), details."""
    claims = [c for c in json.loads(claims_file.read_text()) if c["study"] == study]
    if not claims:
        raise ValueError(f"figures/claims.json has no claims of study {study!r}; "
                         f"run `make repro`")
    lines = ["| claim | origin | statement | measured | verdict | details |",
             "|---|---|---|---|---|---|"]
    for c in claims:
        refuted = c["origin"] == "lab" and c["verdict"] == "fail"
        verdict = ("pass" if c["verdict"] == "pass" else
                   "**refuted**" if refuted else f"**{c['verdict']}**")
        details = (f"*Learned:* {c['lesson']} " if refuted else "") + c.get("details", "")
        measured = f"{_number(c['value'])} {c['comparison']} {_number(c['threshold'])}"
        cells = [f"`{c['id']}`", c["origin"], c["statement"], measured, verdict, details]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ")
                                         for x in cells) + " |")
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    return MARK.sub(lambda m: claims_table(m.group(1)), markdown)
