"""The README's layout names what the package holds."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_layout_names_every_package_and_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"([a-z_]+(?:/|\.py))", layout))
    package = ROOT / "src" / "tsunagu"
    present = {p.name + "/" for p in package.iterdir() if (p / "__init__.py").exists()} | {
        p.name for p in package.glob("*.py") if not p.name.startswith("__")
    }
    assert present - named == set(), "in the code, not in the README's layout"
    assert {n for n in named if n.endswith("/")} - present - {
        "src/",
        "tsunagu/",
        "benchmarks/",
    } == set()
