"""ffka.sweep: checked parameters, grids, papermill runs (locked, interruptible, skip finished), aggregation."""
import json, multiprocessing as mp, os, signal, time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from ffka.sweep import (RunFailed, aggregate, check_params, expand_grid, find_runs, is_done, load_yaml, notebook_parameters,
                        run_all, run_notebook, sweep as run_sweep)


def trivial_notebook(path: Path) -> Path:
    "A notebook with a parameters cell that writes results/effectivity.csv + meta.json, and can be told to fail or sleep."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Trivial experiment for the sweep tests."),
                nbformat.v4.new_code_cell("x = 1          # a number\nseed = 0       # a seed\nfail = False   # fail in the last cell\n"
                                          "sleep = 0.0    # seconds to sleep\nvariants = {}  # an ordered mapping\nrun_dir = ''",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(
                    "import time, pandas as pd\nfrom pathlib import Path\nfrom ffka.pipeline import save_table, write_meta\ntime.sleep(sleep)\n"
                    "if fail: raise RuntimeError(f'asked to fail (x={x})')\nPath(run_dir, 'order.txt').write_text(','.join(variants))\n"
                    "save_table(run_dir, 'effectivity', pd.DataFrame({'scenario': ['once'], 'kind': ['mem'], 'effectivity': [x + 10 * seed]}))\n"
                    "write_meta(run_dir, {'x': x, 'seed': seed, 'fail': fail})")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def nb(tmp_path):
    return trivial_notebook(tmp_path / "trivial.ipynb")


def test_notebook_parameters_and_checks(nb):
    p = notebook_parameters(nb)
    assert list(p) == ["x", "seed", "fail", "sleep", "variants", "run_dir"] and p["x"].help == "a number"
    assert check_params(nb, {"x": 3, "sleep": 1}) == {"x": 3, "sleep": 1}            # an int where a float is declared
    for bad, msg in [({"stpes": 5}, "no parameter 'stpes'"), ({"x": "12"}, "x must be int like its default 1"),
                     ({"x": 12.7}, "x must be int"), ({"fail": 1}, "fail must be bool"), ({"x": True}, "x must be int"),
                     ({"variants": [1]}, "variants must be dict"), ({"a b": 1}, "is not a parameter name"),
                     ({"smoke = True\nimport os; os.system('touch /tmp/pwned')\n_x": 1}, "is not a parameter name")]:
        with pytest.raises(ValueError, match=msg.replace("(", r"\(")): check_params(nb, bad, "p.yaml")


def test_params_files_errors_name_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("x: [1,\n"); (tmp_path / "b.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "c.yaml").write_text("x: !!python/object/apply:os.system ['true']\n"); (tmp_path / "d.yaml").write_bytes(b"x: \xff\xfe\n")
    for f, msg in [("a", "a.yaml: not valid YAML"), ("b", "b.yaml: expected a YAML mapping"), ("c", "c.yaml: not valid YAML"), ("d", "d.yaml: not UTF-8")]:
        with pytest.raises(ValueError, match=msg): load_yaml(tmp_path / f"{f}.yaml")
    with pytest.raises(FileNotFoundError, match="params file not found"): load_yaml(tmp_path / "none.yaml")


def test_expand_grid_product_base_and_checks(tmp_path, nb):
    (tmp_path / "base.yaml").write_text("x: 5\nseed: 9\n")
    (tmp_path / "grid.yaml").write_text("notebook: trivial.ipynb\nbase: base.yaml\nparams: {seed: 3}\ngrid: {x: [1, 2, 3], seed: [0, 1]}\nrun_root: out\n")
    runs = expand_grid(tmp_path / "grid.yaml")
    assert [(r.params["x"], r.params["seed"]) for r in runs] == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert all(r.run_dir.parent == (tmp_path / "out").resolve() for r in runs) and len({r.run_dir for r in runs}) == 6
    one = expand_grid({"notebook": str(nb), "grid": {"x": [1]}}, run_root=tmp_path)[0]
    assert one.run_dir == expand_grid({"notebook": str(nb), "grid": {"x": [1, 2]}}, run_root=tmp_path)[0].run_dir
    for spec, msg in [({"grid": {}}, "missing key 'notebook'"), ({"notebook": str(nb), "grid": {"x": 1}}, "must be a non-empty list"),
                      ({"notebook": str(nb), "grid": {"sede": [1, 2]}}, "no parameter 'sede'"),
                      ({"notebook": str(nb), "grid": {"x": [1]}, "name": "{y}"}, "uses 'y'"),
                      ({"notebook": str(nb), "grids": {}}, "unknown key"), ({"notebook": "nope.ipynb"}, "not found")]:
        with pytest.raises((ValueError, FileNotFoundError), match=msg): expand_grid(spec, run_root=tmp_path)


def test_run_notebook_contract_skip_and_order(tmp_path, nb):
    d = run_notebook(nb, {"x": 2, "variants": {"d64": {}, "d128": {}, "a": {}}}, tmp_path / "r")
    assert is_done(d) and (d / "params.yaml").is_file() and (d / "notebook.ipynb").is_file() and (d / "run.log").is_file()
    assert (d / "order.txt").read_text() == "d64,d128,a"                                  # mapping order kept (e02's size variants)
    assert "without encryption" not in (d / "run.log").read_text()                       # IPC kernel transport: no TCP warning
    assert not list(nb.parent.glob("kernel-ipc*")) and not list(d.glob("kernel*"))        # its sockets live (and die) in a temp folder
    assert json.loads((d / "meta.json").read_text())["code_hash"]
    t0 = time.time(); run_notebook(nb, {"x": 2, "variants": {"d64": {}, "d128": {}, "a": {}}}, d); assert time.time() - t0 < 3
    with pytest.raises(ValueError, match="finished with other parameters"): run_notebook(nb, {"x": 3}, d)


def test_run_notebook_failure_names_the_cell(tmp_path, nb):
    with pytest.raises(RunFailed, match=r"RuntimeError: asked to fail \(x=1\)"):
        run_notebook(nb, {"fail": True}, tmp_path / "f")
    err = (tmp_path / "f" / "ERROR").read_text()
    assert "asked to fail" in err and "In [" in err and not (tmp_path / "f" / "DONE").exists()


def test_sweep_dry_run_skip_and_failures(tmp_path, nb):
    runs = expand_grid({"notebook": str(nb), "grid": {"x": [1, 2, 3], "fail": [False, True]}}, run_root=tmp_path)
    assert len(run_all(runs, dry_run=True, progress=False).planned) == 6
    r = run_all(runs, progress=False)
    assert len(r.ran) == 3 and len(r.failed) == 3 and "3 failed" in r.summary()
    assert [p.name for p in r.ran] == [s.run_dir.name for s in runs if not s.params["fail"]]
    r2 = run_all(runs, progress=False)
    assert len(r2.skipped) == 3 and len(r2.ran) == 0                                      # finished runs are kept


def _sweep_in_child(runs, q):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    r = run_all(runs, progress=False); q.put((r.summary(), r.interrupted is not None))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_the_sweep_and_a_rerun_continues(tmp_path, nb, sig):
    runs = expand_grid({"notebook": str(nb), "params": {"sleep": 20.0}, "grid": {"x": [1, 2, 3]}}, run_root=tmp_path)
    ctx = mp.get_context("fork"); q = ctx.Queue()
    def child(q):
        from ffka.cli import _sigterm
        signal.signal(signal.SIGTERM, _sigterm)
        _sweep_in_child(runs, q)
    p = ctx.Process(target=child, args=(q,)); p.start()
    while not (runs[0].run_dir / ".spec.json").is_file(): time.sleep(0.2)
    time.sleep(2)
    assert not list(nb.parent.glob("kernel-ipc*"))               # the running kernel's sockets are not beside the notebook
    t0 = time.time(); os.kill(p.pid, sig)
    summary, interrupted = q.get(timeout=60); p.join(10)
    assert interrupted and summary == "interrupted: 0 of 3 finished; rerun to continue" and time.time() - t0 < 20
    assert (runs[0].run_dir / "INTERRUPTED").is_file() and not (runs[0].run_dir / "DONE").exists()
    assert not (runs[1].run_dir / "params.yaml").exists()                                 # the sweep stopped
    fast = expand_grid({"notebook": str(nb), "params": {"sleep": 0.0}, "grid": {"x": [1]}}, run_root=tmp_path / "again")
    assert len(run_all(fast, progress=False).ran) == 1


def test_two_sweeps_on_one_folder_run_each_run_once(tmp_path, nb):
    runs = expand_grid({"notebook": str(nb), "params": {"sleep": 3.0}, "grid": {"x": [1, 2]}}, run_root=tmp_path)
    ctx = mp.get_context("fork"); q = ctx.Queue()
    ps = [ctx.Process(target=lambda q: q.put([p.name for p in run_all(runs, progress=False).ran]), args=(q,)) for _ in range(2)]
    for p in ps: p.start()
    ran = q.get(timeout=120) + q.get(timeout=120)
    for p in ps: p.join()
    assert sorted(ran) == sorted(r.run_dir.name for r in runs)                            # each run ran exactly once
    assert all(r.run_dir.joinpath("notebook.ipynb").read_text().count("asked to fail") >= 1 for r in runs) and all(is_done(r.run_dir) for r in runs)


def test_aggregate_finds_runs_below_a_folder(tmp_path, nb):
    for s in (0, 1): run_notebook(nb, {"x": 1, "seed": s}, tmp_path / "exp" / f"s{s}")
    (tmp_path / "exp" / "unfinished").mkdir(); (tmp_path / "exp" / "unfinished" / "params.yaml").write_text("x: 1\n")
    assert len(find_runs([tmp_path / "exp"])) == 3
    t = aggregate([tmp_path / "exp"])["effectivity"]
    assert sorted(t.effectivity) == [1, 11] and "seed" in t.columns and set(t.run) == {"s0", "s1"}
    (tmp_path / "exp" / "s0" / "results" / "effectivity.csv").write_text('a,b\n"1,2\n')
    with pytest.raises(ValueError, match="effectivity.csv: not a readable CSV table"): aggregate([tmp_path / "exp"])
