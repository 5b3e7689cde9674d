"""After ``mkdocs build``: every demo page of the site shows its figures and its printed
numbers (an empty page would mean the notebooks were not executed, or figures not captured),
no executed cell shows a warning or a path of the build machine, and the math of every lens
and demo page renders, without network.

Math: MathJax must be served with the site (no CDN). With a headless Chromium installed
(``chromium`` or ``chromium-browser`` on PATH; ``--browser never`` skips it), each page is
rendered and must show typeset math and no raw TeX delimiters outside code. Without one, a
static check of the built HTML: every TeX delimiter outside code stands inside an element that
MathJax typesets (``.arithmatex`` on Markdown pages, ``.jp-RenderedMarkdown`` on demo pages).

Usage: python tools/check_site.py SITE_DIR [--browser auto|never|require]
"""

import argparse
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHJAX = "javascripts/mathjax/tex-svg-full.js"
TYPESET = ("arithmatex", "jp-RenderedMarkdown")  # the classes MathJax processes (mathjax.js)
SKIP = {"code", "pre", "script", "style", "textarea", "svg", "mjx-assistive-mml"}
SKIP_CLASSES = {"clipboard-copy-txt"}  # a code cell's hidden copy for the clipboard
TEX = re.compile(r"\\\(|\\\[|\$\$|\$[^$\n]*[\\^_{}][^$\n]*\$")
CDN = re.compile(r"""src=["'][^"']*(cdn\.jsdelivr|cdnjs|unpkg|polyfill\.io)[^"']*mathjax""", re.I)
STDERR_BLOCK = re.compile(r'<div[^>]*data-mime-type="application/vnd\.jupyter\.stderr"')
TEX_ERROR = re.compile(r'<g[^>]*data-mml-node="merror"|<mjx-merror')


class RawTeX(HTMLParser):
    """Text with TeX delimiters outside code, and whether a typesetting class encloses it."""

    VOID = {"br", "img", "hr", "meta", "link", "input", "source", "wbr", "col", "path", "use"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.found = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append((tag, dict(attrs).get("class") or ""))

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if any(tag in SKIP or SKIP_CLASSES & set(cls.split()) for tag, cls in self.stack):
            return
        for match in TEX.finditer(data):
            typeset = any(name in cls.split() for _, cls in self.stack for name in TYPESET)
            self.found.append((match.group(0)[:60], typeset))


def raw_tex(html: str) -> list[tuple[str, bool]]:
    parser = RawTeX()
    parser.feed(html)
    return parser.found


def math_pages(site: Path) -> list[Path]:
    pages = sorted((site / "lenses").glob("*/index.html"))
    pages += [site / "demos" / d.stem / "index.html"
              for d in sorted((ROOT / "demos").glob("[0-9][0-9]_*.py"))]
    return [p for p in pages if p.exists()]


def browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def rendered_dom(chrome: str, page: Path) -> str:
    """The page's DOM after its scripts ran (MathJax typesets within the time budget)."""
    done = subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu",
                           "--allow-file-access-from-files", "--virtual-time-budget=20000",
                           "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180)
    return done.stdout


def math_problems(site: Path, mode: str) -> list[str]:
    problems = []
    if not (site / MATHJAX).exists():
        problems.append(f"{MATHJAX}: missing, math cannot render without network")
    pages, has_math = math_pages(site), {}
    for page in pages:
        html = page.read_text()
        where = page.relative_to(site)
        if CDN.search(html):
            problems.append(f"{where}: loads MathJax from a CDN")
        found = raw_tex(html)
        has_math[page] = bool(found)
        stray = [tex for tex, typeset in found if not typeset]
        if stray:
            problems.append(f"{where}: TeX outside typeset elements, e.g. {stray[0]!r}")
    chrome = browser() if mode != "never" else None
    if mode == "require" and chrome is None:
        problems.append("--browser require: no chromium on PATH")
    if chrome:
        for page in pages:
            dom = rendered_dom(chrome, page)
            where = page.relative_to(site)
            left = [tex for tex, _ in raw_tex(dom)]
            if has_math[page] and "<mjx-container" not in dom:
                problems.append(f"{where}: no typeset math after rendering in {chrome}")
            elif left:
                problems.append(f"{where}: raw TeX after rendering, e.g. {left[0]!r}")
            if TEX_ERROR.search(dom):
                problems.append(f"{where}: MathJax reports a TeX error")
        print(f"math rendered in headless {Path(chrome).name} on {len(pages)} pages")
    else:
        print(f"math checked statically on {len(pages)} pages (no headless browser)")
    return problems


def main(site: Path, mode: str = "auto") -> int:
    problems = []
    for demo in sorted((ROOT / "demos").glob("[0-9][0-9]_*.py")):
        page = site / "demos" / demo.stem / "index.html"
        if not page.exists():
            problems.append(f"{page}: missing")
            continue
        html = page.read_text()
        figures = len(re.findall(r'<img[^>]+src="data:image/png', html))
        wanted = max(1, demo.read_text().count("plt.show()"))
        if figures < wanted:
            problems.append(f"{page.relative_to(site)}: {figures} figures, expected {wanted}")
        if "print(" in demo.read_text() and 'class="jp-OutputArea' not in html:
            problems.append(f"{page.relative_to(site)}: no cell output")
        if STDERR_BLOCK.search(html):
            problems.append(f"{page.relative_to(site)}: an executed cell shows a warning")
        if str(ROOT) in html:
            problems.append(f"{page.relative_to(site)}: shows a path of the build ({ROOT})")
    problems += math_problems(site, mode)
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"site ok: every demo page shows its figures and outputs, no warnings; math "
              f"renders offline ({site})")
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="site")
    parser.add_argument("--browser", choices=["auto", "never", "require"], default="auto")
    args = parser.parse_args()
    sys.exit(main(Path(args.site), args.browser))
