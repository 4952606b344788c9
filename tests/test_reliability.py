"""The reliability attack of issue 11, one test per failed or partial case, each asserting the clear error or the
intact state. (Cases covered elsewhere are listed in the closing table of the issue; this file holds the rest and the
end-to-end ones: the command line, interrupts, faults during writes, packaging.)"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from ffka.cli import main
from ffka.profiles import profile
from ffka.core import atomic_write

ROOT = Path(__file__).resolve().parents[1]
FFKA = Path(sys.executable).with_name("ffka")


def trivial(path: Path, sleep=0.0) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("x = 1        # a number\nsleep = 0.0  # seconds\nrun_dir = ''", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import time, transformers\nfrom ffka.pipeline import write_meta\ntime.sleep(sleep)\nwrite_meta(run_dir, {'x': x})")]
    nbformat.write(nb, path)
    return path


# ---------------------------------------------------------------- interrupts (cases: SIGINT ignored; DONE after SIGINT; tracebacks)
@pytest.mark.skipif(not FFKA.is_file(), reason="the ffka console script is not installed next to this python")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ffka_run_stops_on_a_signal_with_one_line(tmp_path, sig):
    nb = trivial(tmp_path / "t.ipynb")
    env = {**os.environ, "FFKA_RUNS": str(tmp_path / "runs")}
    p = subprocess.Popen([str(FFKA), "run", str(nb), "--set", "sleep=60", "--run-dir", str(tmp_path / "r"), "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    while not (tmp_path / "r" / ".spec.json").is_file(): time.sleep(0.2)
    time.sleep(3); t0 = time.time(); os.killpg(p.pid, sig)          # a terminal's Ctrl-C reaches the whole process group
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and time.time() - t0 < 20
    assert (tmp_path / "r" / "INTERRUPTED").is_file() and not (tmp_path / "r" / "DONE").exists()
    assert "Traceback" not in err + out and "ZMQ" not in err + out
    assert "interrupted" in (err + out) and len([l for l in err.splitlines() if l.strip()]) <= 2


# ---------------------------------------------------------------- faults
def test_diverging_run_is_never_cached_or_done(tmp_path, monkeypatch):
    "lr=1e6: the run stops naming the step; no finished cache entry, so a rerun cannot reuse NaN results."
    monkeypatch.setenv("FFKA_CACHE", str(tmp_path / "cache"))
    from ffka.pipeline import injection_run
    with pytest.raises(FloatingPointError, match=r"step \d+: the training loss is"):
        injection_run(profile("smoke", {"optimizer.lr": 1e6}), "mid")
    entries = list((tmp_path / "cache" / "injection").iterdir())
    assert entries and all(p.name.endswith((".partial", ".lock")) for p in entries)


def test_savefig_over_a_full_disk_keeps_the_previous_png(tmp_path, monkeypatch):
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ffka import plots
    fig, ax = plt.subplots(); ax.plot([0, 1])
    good = plots.savefig(fig, "f", tmp_path, formats=("png",), close=False)[0].read_bytes()
    def full(self, fname, **kw): Path(fname).write_bytes(b"\x89PNG half"); raise OSError(28, "No space left on device")
    monkeypatch.setattr(type(fig), "savefig", full)
    with pytest.raises(OSError, match="could not write .*f.png"): plots.savefig(fig, "f", tmp_path, formats=("png",))
    assert (tmp_path / "f.png").read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_truncated_run_files_name_the_file(tmp_path, capsys):
    "A truncated meta.json of a run folder, or a damaged results CSV: errors that name the file (not raw tracebacks)."
    from ffka.report import write_results
    d = tmp_path / "run"; d.mkdir(); (d / "meta.json").write_text('{"runs": [')
    with pytest.raises(ValueError, match="meta.json: not valid JSON"): write_results({}, tmp_path / "out", run_dirs=[d])


def test_concurrent_cache_users_compute_once(tmp_path, monkeypatch):
    "Two processes asking for one cache entry: one computes, the other waits and reuses it (the entry is never half there)."
    import multiprocessing as mp
    monkeypatch.setenv("FFKA_CACHE", str(tmp_path))
    from ffka.pipeline import cached
    def work(q):
        def compute(d): (d / "calls").write_text(str(os.getpid())); time.sleep(2)
        q.put(str(cached("demo", {"k": 1}, compute)))
    ctx = mp.get_context("fork"); q = ctx.Queue()
    ps = [ctx.Process(target=work, args=(q,)) for _ in range(2)]
    for p in ps: p.start()
    a, b = q.get(timeout=60), q.get(timeout=60)
    for p in ps: p.join()
    assert a == b and len(list((tmp_path / "demo").glob("*/calls"))) == 1


# ---------------------------------------------------------------- inputs through the command line (one line, exit 2)
@pytest.mark.parametrize("yaml_text,msg", [
    ("protocol: 5\n", "no parameter 'protocol'"),
    ("config: {protocol: {steps: '12'}}\n", "protocol.steps: must be an int, got '12' (str)"),
    ("config: {batch: {rows: true}}\n", "batch.rows: must be an int, got True (bool)"),
    ("config: {batch: {grad_accum: 0}}\n", "batch.grad_accum: must be >= 1"),
    ("config: {protocol: {steps: 12.7}}\n", "protocol.steps: must be an int"),
    ("config: {checkpoint: {save_log_every: 0}}\n", "checkpoint.save_log_every: must be >= 1"),
    ("config: {batch: {probe_batch_size: 0}}\n", "batch.probe_batch_size: must be >= 1"),
    ("config: {protocol: {n_grid: -1}}\n", "protocol.n_grid: must be >= 0"),
    ("config: {protocol: {steps: 5}}\n", "the last injection (step 90)"),
    ("include: smoke.yaml\n", "no parameter 'include'"),
    ("seed: [1,\n", "not valid YAML"),
    ("seed: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
])
def test_bad_params_files_fail_before_any_work(tmp_path, capsys, yaml_text, msg):
    f = tmp_path / "p.yaml"; f.write_text(yaml_text)
    t0 = time.time()
    assert main(["run", "e01_dynamics", str(f), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ffka: error:") and msg in err and "Traceback" not in err and time.time() - t0 < 30
    assert not (tmp_path / "r").exists()                                   # nothing was started


def test_code_in_a_params_key_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    f = tmp_path / "p.yaml"; f.write_text(json.dumps({f"smoke = True\nopen({str(marker)!r}, 'w').write('x')\n_x": 1}))
    assert main(["run", "e01_dynamics", str(f), "--run-dir", str(tmp_path / "r")]) == 2
    assert "is not a parameter name" in capsys.readouterr().err and not marker.exists()


def test_grid_axis_typo_and_unknown_template_key(tmp_path, capsys):
    g = tmp_path / "g.yaml"; g.write_text("notebook: e01_dynamics\ngrid: {sede: [1, 2]}\n")
    assert main(["sweep", str(g)]) == 2 and "no parameter 'sede' (did you mean 'seed'" in capsys.readouterr().err
    g.write_text("notebook: e01_dynamics\ngrid: {seed: [1, 2]}\nname: 's{sead}'\n")
    assert main(["sweep", str(g)]) == 2 and "uses 'sead'" in capsys.readouterr().err


def test_plain_papermill_rejects_an_unknown_parameter(tmp_path):
    "The papermill-only user: the notebook itself checks its injected parameters (papermill only warns)."
    import papermill as pm
    from ffka.sweep import experiments_dir
    with pytest.raises(pm.PapermillExecutionError, match="no parameter 'stpes'"):
        pm.execute_notebook(str(experiments_dir() / "e01_dynamics.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"profile": "smoke", "stpes": 5, "run_dir": str(tmp_path / "r")}, kernel_name="python3",
                            progress_bar=False, cwd=str(experiments_dir()))


# ---------------------------------------------------------------- friendly output
def test_aggregate_takes_an_experiment_folder_and_says_what_it_wrote(tmp_path, capsys):
    from ffka.sweep import run_notebook
    nb = trivial(tmp_path / "t.ipynb")
    for x in (1, 2): run_notebook(nb, {"x": x}, tmp_path / "runs" / "exp" / f"x{x}")
    for d in (tmp_path / "runs" / "exp").iterdir():
        atomic_write(d / "results" / "values.csv", pd.DataFrame({"x": [json.loads((d / "meta.json").read_text())["params"]["x"]]}).to_csv(index=False))
    assert main(["aggregate", str(tmp_path / "runs"), "--out", str(tmp_path / "agg")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "values.csv (2 rows from 2 runs)" in out and sorted(pd.read_csv(tmp_path / "agg" / "values.csv").x) == [1, 2]
    assert main(["aggregate", str(tmp_path / "t.ipynb").replace("t.ipynb", "nothing-here")]) == 2


def test_run_log_is_quiet_about_kernel_noise(tmp_path):
    from ffka.sweep import run_notebook
    d = run_notebook(trivial(tmp_path / "t.ipynb"), {}, tmp_path / "r")
    log = (d / "run.log").read_text()
    assert "without encryption" not in log and "IProgress" not in log


def test_stale_runs_are_reported(tmp_path):
    from ffka.report import stale_runs
    from ffka.pipeline import code_hash
    d = tmp_path / "r"; d.mkdir(); (d / "DONE").write_text("{}")
    (d / "meta.json").write_text(json.dumps({"code_hash": "0ld", "runs": [{"code_hash": "0ld"}]}))
    assert stale_runs([d]) == [d]
    (d / "meta.json").write_text(json.dumps({"code_hash": code_hash(), "runs": [{"code_hash": code_hash()}]}))
    assert stale_runs([d]) == []


# ---------------------------------------------------------------- pip users
def test_help_shows_no_private_names_and_the_package_has_a_docstring():
    import pydoc, ffka
    from ffka.model import LM
    from ffka.schedule import InjectionSchedule
    assert ffka.__doc__ and "Chang et al. 2024" in ffka.__doc__
    text = pydoc.render_doc(LM, renderer=pydoc.plaintext) + pydoc.render_doc(InjectionSchedule, renderer=pydoc.plaintext)
    assert "_tiny" not in text and "_from_pretrained" not in text and "_paper" not in text and "tiny(" in text


def test_the_wheel_ships_the_experiments(tmp_path):
    "`pip wheel .` packs nbs/experiments (notebooks and params) as ffka/experiments, so `ffka run` works outside a checkout."
    import zipfile
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("ffka-*.whl"))).namelist()
    assert "ffka/experiments/e01_dynamics.ipynb" in names and "ffka/experiments/params/default_e01.yaml" in names
    assert not any(n.startswith("ffka/experiments/_runs") for n in names)


# ---------------------------------------------------------------- what passed before and must stay
def test_run_names_cannot_leave_the_run_root(tmp_path):
    "A grid's name template with path characters stays one folder below the run root."
    from ffka.sweep import expand_grid
    specs = expand_grid({"notebook": "e01_dynamics", "base": "params/smoke_e01.yaml", "grid": {"seed": [1, 2]}, "name": "../../{seed}/x"},
                        run_root=tmp_path / "runs")
    assert len(specs) == 2 and all(s.run_dir.resolve().parent == (tmp_path / "runs").resolve() for s in specs)
    assert all(".." not in s.run_dir.name.split("/") and "/" not in s.run_dir.name for s in specs)


def test_values_with_code_are_injected_as_literals(tmp_path):
    "papermill writes a parameter *value* as a Python literal: code in a string value stays a string."
    import papermill as pm
    from ffka.sweep import experiments_dir
    marker = tmp_path / "pwned"
    value = f"x'); open({str(marker)!r}, 'w').write('x'); ('\n" + f'"""; open({str(marker)!r}, "w"); """'
    nb = pm.parameterize.parameterize_notebook(pm.iorw.load_notebook_node(str(experiments_dir() / "e01_dynamics.ipynb")),
                                               {"figures_dir": value, "profile": "smoke"})
    injected = next(c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", []))
    ns = {}
    exec(injected.source, ns)
    assert ns["figures_dir"] == value and ns["profile"] == "smoke" and not marker.exists()


def test_hub_code_is_never_trusted_by_default(monkeypatch):
    "LM.from_pretrained asks transformers for trust_remote_code=False unless the caller says otherwise."
    import transformers
    from ffka.model import LM
    seen = {}
    class Stop(Exception): pass
    def fake(src, **kw):
        seen.update(kw); raise Stop
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake)
    monkeypatch.setattr("ffka.model.hub_offline", lambda: False)
    with pytest.raises(Stop): LM.from_pretrained("some-org/some-model")
    assert seen["trust_remote_code"] is False


def test_one_and_two_threads_agree(tmp_path):
    """The same run with 1 and with 2 torch threads. Not bit-identical (measured: CPU matmuls split their sums
    differently across threads, ~1e-7 in the scores), so within 1e-5; the same thread count twice is bit-identical
    (test_train.py::test_deterministic_and_windows_equal_every)."""
    import torch
    from ffka.pipeline import injection_run
    n = torch.get_num_threads()
    try:
        logs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            logs.append(injection_run(profile("smoke", {"protocol": {"steps": 20}}), "mid", cache=False))
    finally:
        torch.set_num_threads(n)
    d_score, d_loss = np.abs(logs[0].scores - logs[1].scores).max(), np.abs(logs[0].loss - logs[1].loss).max()
    print(f"1 vs 2 threads: max |score diff| {d_score:.2e}, max |loss diff| {d_loss:.2e}")
    assert d_score <= 1e-5 and d_loss <= 1e-5
