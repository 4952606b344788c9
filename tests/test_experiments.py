"""Experiment notebooks: structure, params files, and a papermill smoke run of each with tiny settings.

The smoke runs share one cache (e02/e03 reuse e01's mid run; e03 reuses e02's stage runs)."""
import json, os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from ffka.report import EXPERIMENTS, reproduce_plan, results_tables, write_results
from ffka.sweep import check_params, experiments_dir, load_yaml, notebook_parameters, run_notebook

EXP = experiments_dir()
FIGURES = {"e01_dynamics": ["fig2_dynamics", "fig2_control_drift"], "e02_effectivity": ["fig3_effectivity"],
           "e03_forgetting": ["fig4_forgetting", "fig4_forgetting_corrected"], "e04_batch_size": ["fig5_batch_size"],
           "e05_intervals": ["fig7_intervals"], "e06_long_tail": ["fig6_long_tail"], "e07_dedup": ["fig8_dedup"], "e08_dose": ["fig9_dose"]}
TABLES = {"e01_dynamics": ["dynamics", "effectivity", "drift", "protocol", "findings"], "e02_effectivity": ["effectivity", "findings"],
          "e03_forgetting": ["curves", "fits", "fits_corrected", "decay_table", "seed_heterogeneity", "findings"],
          "e04_batch_size": ["curves", "fits", "thresholds", "findings"], "e05_intervals": ["intervals", "findings"],
          "e06_long_tail": ["long_tail", "findings"], "e07_dedup": ["dedup_injected", "dedup_fits", "dedup_corpus", "findings"],
          "e08_dose": ["dose", "dose_trend", "findings"]}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_notebook_structure(name):
    nb = nbformat.read(EXP / f"{name}.ipynb", as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and ("**Claim" in first.source or "**Question" in first.source) and "**Produces:**" in first.source
    assert "fig" in first.source.lower() and "declared" in "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and len(tagged[0].source.strip().splitlines()) <= 15      # issue 10: <= 15 lines
    assert {"seed", "smoke", "run_dir", "device", "profile", "config"} <= set(notebook_parameters(EXP / f"{name}.ipynb"))
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    src = "".join(c.source for c in nb.cells)
    assert "#| export" not in src and "plots.savefig(" in src and "write_meta(" in src and "check_params(" in src


@pytest.mark.parametrize("prefix", ["default", "quick", "smoke", "paper", "long"])
def test_params_files_are_flat_and_valid(prefix):
    "Every shipped params file works with plain papermill (flat, no include) and passes the notebook's checks."
    files = sorted((EXP / "params").glob(f"{prefix}_e*.yaml"))
    assert len(files) >= 4
    for f in files:
        name = next(e for e in EXPERIMENTS if e.startswith(f.stem.split("_")[1]))
        p = load_yaml(f)
        assert "include" not in p and "profile" in p
        check_params(EXP / f"{name}.ipynb", p, f.name)


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
    for t in TABLES[name]: assert len(pd.read_csv(run_dir / "results" / f"{t}.csv")) > 0, t
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["params"]["smoke"] is True and meta["ffka_version"] and meta["code_hash"] and meta["runs"]
    assert all(r["code_hash"] == meta["code_hash"] for r in meta["runs"])
    assert all(0 < r["knowledge_fraction_first"] <= 1 for r in meta["runs"] if r["knowledge_fraction_first"] is not None)   # None: no injections
    findings = pd.read_csv(run_dir / "results" / "findings.csv")
    assert list(findings.columns) == ["experiment", "claim", "quantity", "value", "lo", "hi", "level", "verdict", "test"] and len(findings) >= 2
    assert set(findings.verdict) <= {"holds", "does not hold", "inconclusive"} and findings.test.str.contains("CI of").all()
    if name == "e04_batch_size": assert sorted(pd.read_csv(run_dir / "results" / "thresholds.csv").batch_size.unique()) == [2, 4]


def test_smoke_runs_shared_the_cache(smoke_env):
    """Each configuration trained once: mid (e01, shared by e02-e04), early and late at their own LR and at the one
    App. F LR (the mid run doubles as App. F's: the mean LR is the mid LR), the d16 size variant, 2 small-batch runs."""
    entries = [p for p in (smoke_env / "cache" / "injection").iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    # + e05's and e07's cohort runs, e08's 2- and 8-row runs (its 4 rows are the mid run); e06 and e07's corpus runs add none
    assert len(entries) == (1 + 2 + 2 + 1 + 2) + 2 + 2, sorted(p.name for p in entries)
    assert len([p for p in (smoke_env / "cache" / "base").iterdir() if p.is_dir()]) == 2     # the main base model + the d16 one


def test_report_of_the_smoke_runs(smoke_env, tmp_path):
    dirs = [smoke_env / n for n in EXPERIMENTS]
    tabs = results_tables(dirs)
    assert set(tabs) == {"findings", "effectivity", "fits", "thresholds"} and set(tabs["findings"].notebook) == set(EXPERIMENTS)
    md = write_results(tabs, tmp_path, run_dirs=dirs)[1].read_text()
    assert "The paper's claims on this run" in md and "knowledge_fraction_first" in md and "Results computed by code hash" in md
    claims = [l for l in md.splitlines() if l.startswith("| e0")][:len(tabs["findings"])]      # the findings table comes first
    assert all(any(f"| **{v}** |" in l for v in ("holds", "does not hold", "inconclusive")) for l in claims), claims
    assert "| True |" not in md and "| False |" not in md                                         # flags print as yes/no: only verdicts read as verdicts


def test_reproduce_plan_profiles(tmp_path):
    plan, quick = reproduce_plan(run_root=tmp_path), reproduce_plan("quick", run_root=tmp_path)
    from ffka.report import profile_experiments
    assert [r.notebook.stem for r in plan] == profile_experiments("default") and all(r.run_dir.parent == tmp_path for r in plan)
    assert profile_experiments("long") == list(EXPERIMENTS)
    assert {p.params["profile"] for p in plan} == {"embedded"} and {q.params["profile"] for q in quick} == {"quick"}
    assert all(Path(q.params["figures_dir"]).name == "quick" for q in quick)


def test_reproduce_only_keeps_the_other_finished_experiments(tmp_path):
    "`ffka reproduce --only eNN` reruns eNN and writes results of every finished experiment of the profile, not eNN's alone."
    import yaml
    from ffka.core import jsonable
    from ffka.report import reproduce
    plan = reproduce_plan("quick", run_root=tmp_path / "runs", figures=tmp_path / "fig")
    for i, spec in enumerate(plan):          # finished runs, as run_notebook leaves them
        (spec.run_dir / "results").mkdir(parents=True)
        (spec.run_dir / "params.yaml").write_text(yaml.safe_dump(jsonable(spec.params), sort_keys=True))
        pd.DataFrame([dict(experiment=spec.notebook.stem, claim=f"claim {i}", quantity="q", value=1.0, lo=0.5, hi=1.5, level=0.95,
                           verdict="holds", test="95% CI of q > 0")]).to_csv(spec.run_dir / "results" / "findings.csv", index=False)
        (spec.run_dir / "DONE").write_text(json.dumps({"notebook": str(spec.notebook)}))
    only = plan[1].notebook.stem
    res = reproduce("quick", experiments=[only], run_root=tmp_path / "runs", figures=tmp_path / "fig", progress=False)
    assert not res.ran                       # finished with the same parameters: skipped
    found = pd.read_csv(tmp_path / "fig" / "results.csv")
    assert sorted(found[found.table == "findings"].notebook) == sorted(s.notebook.stem for s in plan)
