"""Claims as data: what a paper states, what we measured, and whether it reproduces.

A :class:`Claim` carries an id, the paper, the statement, the measured value, the threshold,
the comparison, a verdict (``pass`` / ``fail`` / ``not run``) and its origin: ``paper`` (a
seed paper's claim, under the paper's definitions) or ``lab`` (this lab's hypothesis,
extrapolation or theory check; a failed one is *refuted*, and says what that
teaches). Each study saves its claims
to ``figures/claims/<study>.json``; :func:`write_report` joins all studies into
``figures/claims.json`` (one object per claim) and ``figures/REPORT.md`` (table + figures).
Console: ``rfattn-report [FIGURES_DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import math
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .records import atomic_write_json, atomic_write_text

COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
VERDICTS = ("pass", "fail", "not run")
ORIGINS = ("paper", "lab")


@dataclass
class Claim:
    """One measured claim of a paper; ``verdict`` is derived: ``value <comparison> threshold``
    (``fail`` when the value is None).

    Parameters
    ----------
    id : str
        A stable slug, unique within the study.
    study : str
        ``rfa``, ``theory``, ``ntk``, ``svm`` or ``lowrank``.
    paper : str
        The reference.
    statement : str
        What is claimed, in words.
    value : float or None
        The measured number (None: not measurable from the results).
    threshold : float
    comparison : str
        ``<``, ``<=``, ``>``, ``>=`` or ``==``.
    figure : str, optional
        The figure file that shows it.
    details : str
        Where and why, in words (per-cell numbers of a failing claim).
    origin : str
        ``paper`` (a seed paper's claim, under its definitions) or ``lab`` (this lab's
        hypothesis, extrapolation or theory check).
    lesson : str
        For a ``lab`` claim: one sentence on what its refutation teaches (shown when it
        fails).
    """

    id: str
    study: str
    paper: str
    statement: str
    value: float | None
    threshold: float
    comparison: str
    verdict: str = field(init=False)
    figure: str | None = None
    details: str = ""
    origin: str = ""
    lesson: str = ""

    def __post_init__(self):
        if self.origin not in ORIGINS:
            raise ValueError(f"claim {self.id}: origin must be one of {', '.join(ORIGINS)} "
                             f"(got {self.origin!r})")
        if self.origin == "lab" and not self.lesson.strip():
            raise ValueError(f"claim {self.id}: a lab claim needs a lesson (what its "
                             "refutation teaches)")
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison must be one of {', '.join(COMPARISONS)} "
                             f"(got {self.comparison!r})")
        if self.value is None or not math.isfinite(self.value):
            self.verdict = "not run"
            self.value = None
            if not self.details:
                raise ValueError(f"claim {self.id}: a claim without a measured value must say "
                                 "why in details")
        else:
            self.value = float(self.value)
            ok = COMPARISONS[self.comparison](self.value, self.threshold)
            self.verdict = "pass" if ok else "fail"

    @classmethod
    def from_dict(cls, d: dict) -> Claim:
        d = {k: v for k, v in d.items() if k != "verdict"}
        return cls(**d)


def save_study_claims(study: str, claims: list[Claim], figures_dir: str | Path) -> Path:
    """Store one study's claims as ``figures_dir/claims/<study>.json`` (atomically).

    Parameters
    ----------
    study : str
    claims : list of Claim
    figures_dir : path

    Returns
    -------
    Path
        The file written.
    """
    return atomic_write_json(Path(figures_dir) / "claims" / f"{study}.json",
                             [asdict(c) for c in claims])


def load_claims(figures_dir: str | Path) -> list[Claim]:
    """All claims stored below ``figures_dir/claims``, study by study.

    Parameters
    ----------
    figures_dir : path

    Returns
    -------
    list of Claim
    """
    claims = []
    for f in sorted((Path(figures_dir) / "claims").glob("*.json")):
        claims += [Claim.from_dict(d) for d in json.loads(f.read_text())]
    return claims


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.3e}"


def _counts(claims: list[Claim]) -> str:
    """'paper claims: a pass, b fail; lab claims: c pass, d refuted' (and any not run)."""
    parts = []
    for origin, failed in (("paper", "fail"), ("lab", "refuted")):
        group = [c for c in claims if c.origin == origin]
        n = {v: sum(c.verdict == v for c in group) for v in VERDICTS}
        noun = "claim" if len(group) == 1 else "claims"
        parts.append(f"**{len(group)} {origin} {noun}**: {n['pass']} pass, {n['fail']} {failed}"
                     + (f", {n['not run']} not run" if n["not run"] else ""))
    return "; ".join(parts)


def write_report(figures_dir: str | Path = "figures") -> tuple[Path, Path]:
    """Write ``claims.json`` and ``REPORT.md`` from every study's stored claims.

    Parameters
    ----------
    figures_dir : path
        Holds ``claims/<study>.json``.

    Returns
    -------
    (Path, Path)
        ``claims.json`` and ``REPORT.md``.

    Raises
    ------
    FileNotFoundError
        ``figures_dir/claims`` holds no study's claims (nothing to report).
    """
    figures_dir = Path(figures_dir)
    claims = load_claims(figures_dir)
    if not claims:
        raise FileNotFoundError(f"{figures_dir / 'claims'} holds no claims (<study>.json); "
                                "run the reproduction first (make repro)")
    json_path = atomic_write_json(figures_dir / "claims.json", [asdict(c) for c in claims])
    lines = ["# rfattn reproduction report", "",
             "Generated by `make repro` (or `python -m paper_repro`); every number below is "
             "measured by the study's quick configuration. Machine-readable: `claims.json`.",
             "", "Origin: **paper**, a seed paper's claim under the paper's definitions; "
             "**lab**, this lab's hypothesis, extrapolation or theory check (a failed one is "
             "*refuted*, with what that teaches).", "", f"All studies: {_counts(claims)}.", ""]
    for study in dict.fromkeys(c.study for c in claims):
        group = [c for c in claims if c.study == study]
        papers = "; ".join(dict.fromkeys(c.paper for c in group))
        lines += [f"## {study}", "", f"{_counts(group)}.", "", f"Papers: {papers}", "",
                  "| id | origin | statement | measured | threshold | verdict | details |",
                  "|---|---|---|---|---|---|---|"]
        for c in group:
            verdict, details = c.verdict, c.details
            if c.origin == "lab" and c.verdict == "fail":
                verdict, details = "refuted", f"*Learned:* {c.lesson} {c.details}"
            cells = [c.id, c.origin, c.statement, _fmt(c.value),
                     f"{c.comparison} {_fmt(c.threshold)}", f"**{verdict}**", details]
            lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ")
                                             for x in cells) + " |")
        lines.append("")
        for fig in dict.fromkeys(c.figure for c in group if c.figure):
            lines += [f"![{fig}]({fig})", ""]
    md_path = atomic_write_text(figures_dir / "REPORT.md", "\n".join(lines))
    return md_path, json_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rfattn-report", description=__doc__.splitlines()[0])
    parser.add_argument("figures_dir", nargs="?", default="figures")
    args = parser.parse_args(argv)
    try:
        md, js = write_report(args.figures_dir)
    except FileNotFoundError as err:
        print(f"rfattn-report: {err}", file=sys.stderr)
        return 2
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
