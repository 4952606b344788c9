"""Generate README.md from nbs/index.ipynb (nbdev's readme_nb) without quarto.

Quarto cannot be installed on every machine, so `nbdev_readme` is not usable everywhere. This
renders the notebook the way nbdev does for a README: markdown cells verbatim; code cells as
```python blocks with `#|` directives removed; cells marked `#| hide` dropped; text outputs kept.

    python tools/make_readme.py           # write README.md
    python tools/make_readme.py --check   # exit 1 if README.md is out of date
"""
from __future__ import annotations
import argparse, configparser, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")

def _directives(src: str) -> list[str]:
    return [m.group(1).strip() for line in src.splitlines() if (m := DIRECTIVE.match(line))]

def _strip_directives(src: str) -> str:
    return "\n".join(l for l in src.splitlines() if not DIRECTIVE.match(l)).strip("\n")

def render(nb: dict) -> str:
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell.get("source", ""))
        dirs = _directives(src)
        if any(d.split()[:1] in (["hide"], ["exporti"], ["include:"]) or d.startswith("include: false") for d in dirs):
            continue
        if cell["cell_type"] == "markdown":
            parts.append(src.strip("\n"))
        elif cell["cell_type"] == "code":
            code = _strip_directives(src)
            if code and not any(d.startswith("echo: false") for d in dirs):
                parts.append(f"```python\n{code}\n```")
            for out in cell.get("outputs", []):
                text = out.get("text") or out.get("data", {}).get("text/markdown") or out.get("data", {}).get("text/plain")
                if text:
                    text = "".join(text).rstrip("\n")
                    parts.append(text if "text/markdown" in out.get("data", {}) else f"    " + text.replace("\n", "\n    "))
    return "\n\n".join(p for p in parts if p) + "\n"

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if README.md differs from the notebook")
    args = ap.parse_args(argv)
    cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(ROOT / "settings.ini")
    nb_path = ROOT / cfg["DEFAULT"].get("nbs_path", "nbs") / cfg["DEFAULT"].get("readme_nb", "index.ipynb")
    text = render(json.loads(nb_path.read_text(encoding="utf-8")))
    readme = ROOT / "README.md"
    if args.check:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            print(f"README.md is out of date with {nb_path.relative_to(ROOT)}: run `make readme`", file=sys.stderr)
            return 1
        return 0
    readme.write_text(text, encoding="utf-8")
    return 0

if __name__ == "__main__":
    sys.exit(main())
