"""Experiment notebooks: structure, params files, and a papermill smoke run of each with tiny settings.

The smoke runs share one cache (e02/e03 reuse e01's mid run; e03 reuses e02's stage runs), so the
module costs about four kernel starts plus a handful of 12-step runs of a 1-layer model.
"""
import json, os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from ffka import sweep
from ffka.sweep import EXPERIMENTS, PIPELINE_DEFAULTS, experiments_dir, load_yaml, notebook_parameters, run_notebook

EXP = experiments_dir()
FIGURES = {"e01_dynamics": ["fig2_dynamics", "fig2_control_drift"], "e02_effectivity": ["fig3_effectivity"],
           "e03_forgetting": ["fig4_forgetting", "fig4_forgetting_corrected"], "e04_batch_size": ["fig5_batch_size"]}
TABLES = {"e01_dynamics": ["dynamics", "effectivity", "drift", "findings"], "e02_effectivity": ["effectivity", "findings"],
          "e03_forgetting": ["curves", "fits", "fits_corrected", "decay_table", "findings"],
          "e04_batch_size": ["curves", "fits", "thresholds", "findings"]}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_notebook_structure(name):
    nb = nbformat.read(EXP / f"{name}.ipynb", as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "**Claim" in first.source and "**Produces:**" in first.source
    assert "Fig." in first.source
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    params = notebook_parameters(EXP / f"{name}.ipynb")
    assert {"seed", "smoke", "run_dir", "device", "model", "model_revisions", "knowledge_source", "data_source",
            "steps", "batch_size", "lr", "scenario_counts"} <= set(params)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    src = "".join(c.source for c in nb.cells)
    assert "#| export" not in src and "plots.savefig(" in src and "write_meta(" in src


def test_defaults_agree_everywhere():
    "Notebook defaults == params/embedded.yaml == sweep.PIPELINE_DEFAULTS (== ffka.train's CPU protocol, checked in 09_sweep)."
    emb = load_yaml(EXP / "params" / "embedded.yaml")
    for name in EXPERIMENTS:
        nbp = notebook_parameters(EXP / f"{name}.ipynb")
        own = load_yaml(EXP / "params" / f"default_{name.split('_')[0]}.yaml")
        for k, v in PIPELINE_DEFAULTS.items():
            assert k in nbp, (name, k)
            if k not in own: assert nbp[k] == v, (name, k, nbp[k], v)
        for k, v in own.items():
            assert nbp.get(k, "MISSING") == v or k in ("size_variants",), (name, k, nbp.get(k), v)
    assert {k: v for k, v in emb.items() if k in PIPELINE_DEFAULTS} == {k: PIPELINE_DEFAULTS[k] for k in emb if k in PIPELINE_DEFAULTS}


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    old = {k: os.environ.get(k) for k in ("FFKA_CACHE", "OMP_NUM_THREADS")}
    os.environ["FFKA_CACHE"] = str(root / "cache")
    os.environ.setdefault("OMP_NUM_THREADS", "1")     # the kernels inherit it: no thread oversubscription on 2 shared cores
    yield root
    for k, v in old.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v


@pytest.mark.parametrize("name", EXPERIMENTS)   # in order: later notebooks reuse the cached runs of earlier ones
def test_smoke_run(smoke_env, name):
    params = load_yaml(EXP / "params" / f"smoke_{name.split('_')[0]}.yaml")
    assert params["smoke"] is True
    run_dir = run_notebook(EXP / f"{name}.ipynb", params, smoke_env / name)
    assert (run_dir / "DONE").is_file() and not (run_dir / "ERROR").exists()
    for fig in FIGURES[name]:
        for ext in ("png", "pdf"):
            f = run_dir / "figures" / f"{fig}.{ext}"
            assert f.is_file() and f.stat().st_size > 2000, f
    for t in TABLES[name]:
        df = pd.read_csv(run_dir / "results" / f"{t}.csv")
        assert len(df) > 0, t
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["params"]["smoke"] is True and meta["ffka_version"] and meta["git_commit"] and meta["runs"]
    assert all(0 < r["knowledge_fraction_first"] <= 1 for r in meta["runs"])
    findings = pd.read_csv(run_dir / "results" / "findings.csv")
    assert set(findings.columns) >= {"claim", "quantity", "value", "holds"} and len(findings) >= 1
    if name == "e03_forgetting":
        md = (run_dir / "results" / "decay_table.md").read_text()
        assert "±" in md and md.count("\n") >= 3
        assert (run_dir / "results" / "decay_table.tex").read_text().count(r"$\pm$") > 0
    if name == "e04_batch_size":
        th = pd.read_csv(run_dir / "results" / "thresholds.csv")
        assert sorted(th.batch_size.unique()) == [2, 4]


def test_smoke_runs_shared_the_cache(smoke_env):
    "e01, e02 and e03 trained each (stage, model) configuration once: 3 stages + 1 size variant + 2 e04 runs."
    entries = [p for p in (smoke_env / "cache" / "injection").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 6, sorted(p.name for p in entries)


def test_aggregate_the_smoke_runs(smoke_env, tmp_path):
    dirs = [smoke_env / n for n in EXPERIMENTS]
    tabs = sweep.results_tables(dirs)
    assert set(tabs) == {"findings", "effectivity", "fits", "thresholds"}
    assert set(tabs["findings"].notebook) == set(EXPERIMENTS)
    paths = sweep.write_results(tabs, tmp_path, run_dirs=dirs)
    md = paths[1].read_text()
    assert "The paper's claims on this run" in md and "Decay constant" in md and "knowledge_fraction_first" in md
