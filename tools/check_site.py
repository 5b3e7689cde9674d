"""After ``mkdocs build``: every demo page of the site shows its figures and its printed
numbers (an empty page would mean the notebooks were not executed, or figures not captured).

Usage: python tools/check_site.py SITE_DIR
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(site: Path) -> int:
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
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"site ok: every demo page shows its figures and outputs ({site})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "site")))
