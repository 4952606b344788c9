"""README.md is generated from nbs/index.ipynb (nbdev's readme_nb) by ffka.testing.render_readme."""
import json
from pathlib import Path

from ffka.testing import render_readme

ROOT = Path(__file__).resolve().parents[1]


def test_readme_matches_index_notebook():
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    assert (ROOT / "README.md").read_text(encoding="utf-8") == render_readme(nb), "run `make readme`"


def test_two_commands_on_top():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[: readme.index("## What runs")]
    assert "make reproduce" in head and "make test" in head
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"
