"""README.md is generated from nbs/index.ipynb (nbdev's readme_nb) by tools/make_readme.py."""
import importlib.util, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_readme", ROOT / "tools" / "make_readme.py")
make_readme = importlib.util.module_from_spec(spec); spec.loader.exec_module(make_readme)

def test_readme_matches_index_notebook():
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    assert (ROOT / "README.md").read_text(encoding="utf-8") == make_readme.render(nb), "run `make readme`"
    assert make_readme.main(["--check"]) == 0

def test_render_honours_hide_and_directives():
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# Title"]},
        {"cell_type": "code", "source": ["#| hide\n", "secret = 1"], "outputs": []},
        {"cell_type": "code", "source": ["#| eval: false\n", "x = 1"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]}]}
    out = make_readme.render(nb)
    assert "secret" not in out and "#|" not in out
    assert out == "# Title\n\n```python\nx = 1\n```\n\n    hello\n"

def test_two_commands_on_top():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[: readme.index("## Install")]
    assert "make reproduce" in head and "make test" in head
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"
