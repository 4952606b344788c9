"""ffka.sweep: grids, papermill runs (skip finished, failures keep finished runs), dry runs, aggregation, cache, CLI."""
import json, os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from ffka import sweep
from ffka.sweep import (RunFailed, aggregate, cached, config_key, expand_grid, is_done, load_yaml, main, run_notebook,
                        reproduce_plan, sweep as run_sweep, EXPERIMENTS)


def trivial_notebook(path: Path) -> Path:
    "A notebook with a parameters cell that writes results/effectivity.csv + meta.json, and can be told to fail."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Trivial experiment for the sweep tests."),
                nbformat.v4.new_code_cell("x = 1\nseed = 0\nfail = False\nrun_dir = ''", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(
                    "import pandas as pd\nfrom ffka.sweep import save_table, write_meta\n"
                    "if fail: raise RuntimeError(f'asked to fail (x={x})')\n"
                    "save_table(run_dir, 'effectivity', pd.DataFrame({'scenario': ['once'], 'kind': ['mem'], 'effectivity': [x + 10 * seed]}))\n"
                    "write_meta(run_dir, {'x': x, 'seed': seed, 'fail': fail})")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def nb(tmp_path):
    return trivial_notebook(tmp_path / "trivial.ipynb")


def write_grid(tmp_path, text):
    p = tmp_path / "grid.yaml"; p.write_text(text); return p


def test_expand_grid_product_and_base(tmp_path, nb):
    (tmp_path / "base.yaml").write_text("x: 5\nseed: 9\nlist_param: [1, 2]\n")
    g = write_grid(tmp_path, "notebook: trivial.ipynb\nbase: base.yaml\nparams: {seed: 3}\ngrid: {x: [1, 2, 3], seed: [0, 1]}\n"
                             "run_root: out\n")
    runs = expand_grid(g)
    assert len(runs) == 6
    assert [(r.params["x"], r.params["seed"]) for r in runs] == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert all(r.params["list_param"] == [1, 2] for r in runs)          # lists outside `grid` are plain parameters
    assert all(r.run_dir.parent == (tmp_path / "out").resolve() for r in runs)
    assert len({r.run_dir for r in runs}) == 6
    assert runs[0].notebook == nb.resolve()


def test_expand_grid_without_axes_and_name_template(tmp_path, nb):
    runs = expand_grid({"notebook": str(nb), "params": {"x": 2}})
    assert len(runs) == 1 and runs[0].params == {"x": 2}
    runs = expand_grid({"notebook": str(nb), "grid": {"x": [1, 2]}, "name": "x{x}"}, run_root=tmp_path)
    assert [r.run_dir.name.split("-")[0] for r in runs] == ["x1", "x2"]
    same = expand_grid({"notebook": str(nb), "grid": {"x": [1, 2]}, "name": "same"}, run_root=tmp_path)
    assert len({r.run_dir for r in same}) == 2                           # the config hash keeps folders apart
    one = expand_grid({"notebook": str(nb), "grid": {"x": [1]}}, run_root=tmp_path)[0]
    assert one.run_dir == expand_grid({"notebook": str(nb), "grid": {"x": [1, 2]}}, run_root=tmp_path)[0].run_dir


@pytest.mark.parametrize("spec,msg", [({"grid": {}}, "missing key 'notebook'"),
                                      ({"notebook": "nope.ipynb"}, "not found"),
                                      ({"notebook": "trivial.ipynb", "grid": {"x": []}}, "non-empty list"),
                                      ({"notebook": "trivial.ipynb", "gird": {}}, "unknown key")])
def test_expand_grid_errors(tmp_path, nb, spec, msg):
    g = write_grid(tmp_path, yaml.safe_dump(spec))
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        expand_grid(g)


def test_config_key_is_order_independent():
    assert config_key({"a": 1, "b": {"c": [1, 2]}}) == config_key({"b": {"c": (1, 2)}, "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 1.5})


def test_load_yaml_include(tmp_path):
    (tmp_path / "a.yaml").write_text("x: 1\ny: 1\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\ny: 2\n")
    (tmp_path / "c.yaml").write_text("include: [b.yaml]\nz: 3\n")
    assert load_yaml(tmp_path / "c.yaml") == {"x": 1, "y": 2, "z": 3}
    (tmp_path / "bad.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="expected a YAML mapping"):
        load_yaml(tmp_path / "bad.yaml")


def test_run_notebook_writes_contract_and_skips_finished(tmp_path, nb):
    d = run_notebook(nb, {"x": 3, "seed": 1}, tmp_path / "r")
    assert {p.name for p in d.iterdir()} == {"DONE", "meta.json", "notebook.ipynb", "params.yaml", "results"}
    assert load_yaml(d / "params.yaml") == {"x": 3, "seed": 1}
    meta = json.loads((d / "meta.json").read_text())
    assert meta["params"] == {"x": 3, "seed": 1, "fail": False} and meta["ffka_version"] and meta["git_commit"]
    executed = nbformat.read(d / "notebook.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert str(d) in "".join(c.source for c in executed.cells)           # run_dir injected, absolute
    assert is_done(d, {"x": 3, "seed": 1}) and not is_done(d, {"x": 4})
    stamp = (d / "DONE").read_text()
    run_notebook(nb, {"seed": 1, "x": 3}, tmp_path / "r")                 # finished: skipped (key order irrelevant)
    assert (d / "DONE").read_text() == stamp
    with pytest.raises(ValueError, match="finished with other parameters"):
        run_notebook(nb, {"x": 4}, tmp_path / "r")
    run_notebook(nb, {"x": 4}, tmp_path / "r", force=True)
    assert load_yaml(d / "params.yaml") == {"x": 4}


def test_run_notebook_failure_leaves_clear_error(tmp_path, nb):
    with pytest.raises(RunFailed, match=r"asked to fail \(x=7\)"):
        run_notebook(nb, {"x": 7, "fail": True}, tmp_path / "bad")
    err = (tmp_path / "bad" / "ERROR").read_text()
    assert "RuntimeError: asked to fail (x=7)" in err and "notebook.ipynb" in err
    assert not (tmp_path / "bad" / "DONE").exists()
    assert (tmp_path / "bad" / "notebook.ipynb").is_file()                # the partly executed notebook is kept


def test_sweep_dry_run_skip_and_failures(tmp_path, nb):
    g = write_grid(tmp_path, "notebook: trivial.ipynb\ngrid: {x: [1, 2, 3], fail: [false]}\n")
    res = run_sweep(g, run_root=tmp_path / "runs", dry_run=True, progress=False)
    assert len(res.planned) == 3 and not res.ran and not (tmp_path / "runs").exists()
    res = run_sweep(g, run_root=tmp_path / "runs", progress=False)
    assert len(res.ran) == 3 and not res.failed
    res = run_sweep(g, run_root=tmp_path / "runs", progress=False)
    assert len(res.skipped) == 3 and not res.ran                         # resumable: nothing reruns
    res = run_sweep(g, run_root=tmp_path / "runs", dry_run=True, progress=False)
    assert not res.planned and len(res.skipped) == 3

    g2 = write_grid(tmp_path, "notebook: trivial.ipynb\ngrid: {x: [1, 2, 3], fail: [false, true]}\n")
    res = run_sweep(g2, run_root=tmp_path / "runs", progress=False)
    assert len(res.skipped) == 3 and len(res.failed) == 3 and not res.ran
    assert all((d / "DONE").is_file() for d in res.skipped)               # finished runs are kept
    assert all((d / "ERROR").is_file() for d in res.failed)
    assert "3 failed" in res.summary() and "asked to fail" in res.summary()
    res = run_sweep(g2, run_root=tmp_path / "runs", progress=False, keep_going=False)
    assert len(res.failed) == 1                                           # stops at the first failure


def test_aggregate_tags_runs_with_varying_params(tmp_path, nb):
    g = write_grid(tmp_path, "notebook: trivial.ipynb\nparams: {fail: false}\ngrid: {x: [1, 2], seed: [0, 1]}\n")
    res = run_sweep(g, run_root=tmp_path / "runs", progress=False)
    (tmp_path / "runs" / "unfinished").mkdir()
    tabs = aggregate(list(res.run_dirs) + [tmp_path / "runs" / "unfinished"])
    eff = tabs["effectivity"]
    assert len(eff) == 4 and {"run", "notebook", "x", "seed"} <= set(eff.columns) and "fail" not in eff.columns
    assert sorted(eff.effectivity) == [1, 2, 11, 12]
    assert (eff.effectivity == eff.x + 10 * eff.seed).all()


def test_cached_computes_once_and_never_leaves_partial_entries(tmp_path):
    calls = []
    def compute(folder): calls.append(1); (folder / "v.txt").write_text("ok")
    a = cached("k", {"a": 1, "b": [1]}, compute, root=tmp_path)
    b = cached("k", {"b": [1], "a": 1}, compute, root=tmp_path)
    assert a == b and len(calls) == 1 and (a / "v.txt").read_text() == "ok"
    assert json.loads((a / "CONFIG.json").read_text()) == {"a": 1, "b": [1]}
    def boom(folder): (folder / "half").write_text(""); raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cached("k", {"a": 2}, boom, root=tmp_path)
    assert [p.name for p in (tmp_path / "k").iterdir()] == [a.name]


def test_cli_run_sweep_dry_run_and_errors(tmp_path, nb, capsys):
    assert main(["run", str(nb), "--set", "x=5", "--set", "seed=2", "--run-dir", str(tmp_path / "cli"), "--no-progress"]) == 0
    assert load_yaml(tmp_path / "cli" / "params.yaml") == {"x": 5, "seed": 2}
    (tmp_path / "p.yaml").write_text("x: 6\n")
    assert main(["run", str(nb), str(tmp_path / "p.yaml"), "--run-dir", str(tmp_path / "cli2"), "--dry-run"]) == 0
    assert "would run" in capsys.readouterr().out and not (tmp_path / "cli2").exists()
    g = write_grid(tmp_path, "notebook: trivial.ipynb\ngrid: {fail: [false, true]}\n")
    assert main(["sweep", str(g), "--run-root", str(tmp_path / "s"), "--no-progress"]) == 1   # one failed run -> exit 1
    assert "1 ran" in capsys.readouterr().out
    assert main(["run", "no_such_notebook"]) == 2
    assert main(["run", str(nb), "--set", "novalue"]) == 2
    assert main(["aggregate", *map(str, (tmp_path / "s").iterdir()), "--out", str(tmp_path / "agg")]) == 0
    assert len(pd.read_csv(tmp_path / "agg" / "effectivity.csv")) == 1


def test_reproduce_plan_uses_the_params_files(tmp_path):
    plan = reproduce_plan(run_root=tmp_path)
    assert [r.notebook.stem for r in plan] == list(EXPERIMENTS)
    assert all(r.run_dir.parent == tmp_path for r in plan)
    quick = reproduce_plan(quick=True, run_root=tmp_path)
    assert all(q.params["steps"] < p.params["steps"] for p, q in zip(plan, quick))
    assert all(Path(q.params["figures_dir"]).name == "quick" for q in quick)
    assert plan[3].params["scenario_counts"]["once"] == 0                # e04's own layout overrides the shared one


def test_paper_params_files_are_complete():
    "The paper's GPU settings name real notebook parameters and every field the pipeline needs."
    exp = sweep.experiments_dir()
    for name in EXPERIMENTS:
        p = load_yaml(exp / "params" / f"paper_{name.split('_')[0]}.yaml")
        nbp = sweep.notebook_parameters(exp / f"{name}.ipynb")
        assert set(p) <= set(nbp), (name, set(p) - set(nbp))
        assert p["model"].startswith("allenai/OLMo") and p["batch_size"] == 2048 and p["seq_len"] == 2048
        assert p["knowledge_source"] == "kaist-ai/fictional-knowledge" and p["steps"] == 2500
        assert p["scenario_counts"] == {"paraphrase": 40, "duplication": 40, "once": 40, "control": 10}


def test_paper_lr_settings_resolve_to_science_values():
    "The paper params give OLMo-7B's continued linear LR (science.md §2.3) and the constant small-batch LRs."
    from ffka.sweep import pipeline_config, _lr_schedule
    exp = sweep.experiments_dir()
    p = load_yaml(exp / "params" / "paper_e02.yaml")
    for stage, lr0 in (("early", 2.79879e-4), ("mid", 2.3737e-4), ("late", 1.0102e-4)):
        cfg = pipeline_config(p, stage)
        start = cfg["start_step"][stage]
        assert abs(_lr_schedule(cfg, {})(start) - lr0) < 2e-8, stage
    one_b = pipeline_config(p, "mid", **p["size_variants"]["1B"])       # footnote 5: 1B mid at the 7B mid LR
    assert one_b["model"] == "allenai/OLMo-1B-hf" and abs(_lr_schedule(one_b, {})(113000) - 2.3737e-4) < 2e-8
    p4 = load_yaml(exp / "params" / "paper_e04.yaml")
    small = pipeline_config(p4, "mid", batch_size=2048 // p4["batch_ratio"], lr=p4["small_lr"], optimizer=p4["small_optimizer"])
    s = _lr_schedule(small, {})
    assert small["batch_size"] == 128 and s.kind == "constant" and s(0) == s(10**6) == 0.00023737
    with pytest.raises(ValueError, match="carries no LR schedule"):
        _lr_schedule(pipeline_config({**p, "lr": None}, "mid"), {"lr_schedule": None})


def test_missing_token_file_is_a_clear_error(tmp_path):
    from ffka.sweep import pipeline_config, make_stream, Knowledge
    cfg = pipeline_config({"data_source": str(tmp_path / "dolma.npy")}, "mid")
    with pytest.raises(FileNotFoundError, match="token file not found"):
        make_stream(cfg, Knowledge([], {}, None), {})


def test_run_notebook_keeps_the_order_of_mapping_parameters(tmp_path):
    "e02 reads size_variants in the order given (smaller model first): the runner must not sort nested keys."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("variants = {}\nrun_dir = ''", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from pathlib import Path\nPath(run_dir, 'order.txt').write_text(','.join(variants))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "o.ipynb")
    d = run_notebook(tmp_path / "o.ipynb", {"variants": {"d64": {}, "d128": {}, "a": {}}}, tmp_path / "r")
    assert (d / "order.txt").read_text() == "d64,d128,a"
