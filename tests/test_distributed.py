"""ffka.distributed on the CPU (gloo): a run over 2 processes equals the same run in 1 process (DDP and FSDP); a rank
that dies stops the run with an error naming it, and the run resumes to the same result; errors are those of one
process; Ctrl-C stops every rank; the GPU check's dry mode; the pipeline's injection run on 2 processes.

Each launch starts 2 Python processes (5-8 s here); the module takes 2-3 minutes on 2 shared cores."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch

from ffka.config import Parallel
from ffka.distributed import RankFailed, engine_for, launch
from ffka.log import ProbeLog
from ffka.model import LM, load_training_state

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from dist_toy import toy_parts, toy_run  # noqa: E402

ENV = {"PYTHONPATH": str(TESTS)}
TOL = 1e-5   # the bound for scores and losses; measured here: ~5e-7


def run2(payload, processes=2, **kw):
    return launch("dist_toy:toy_run", payload, processes, env=ENV, **kw)


def par(strategy, **kw):
    return {"parallel": dict(processes=2, strategy=strategy, **kw)}


def diffs(got, ref):
    return (float(np.abs(np.asarray(got["loss"]) - np.asarray(ref["loss"])).max()),
            float(np.abs(np.asarray(got["scores"]) - np.asarray(ref["scores"])).max()))


@pytest.fixture(scope="module")
def reference(torch_one_thread):
    "The toy run in this process (1 process), with untied and with tied embeddings."
    return {tie: toy_run({"tie": tie}) for tie in (False, True)}


@pytest.mark.parametrize("strategy,tie,ac", [("ddp", False, False), ("fsdp", True, True)], ids=["ddp", "fsdp-tied-actckpt"])
def test_two_processes_equal_one(reference, tmp_path, strategy, tie, ac):
    out = run2({"config": par(strategy, activation_checkpointing=ac), "tie": tie, "out_dir": str(tmp_path)}, log_file=tmp_path / "launch.log")
    d_loss, d_score = diffs(out, reference[tie])
    print(f"{strategy}: max |loss diff| {d_loss:.2e}, max |score diff| {d_score:.2e}")
    assert d_loss <= TOL and d_score <= TOL
    assert out["fingerprint"] == reference[tie]["fingerprint"]        # how many processes ran it is not part of what the run is
    pl = ProbeLog.load(tmp_path / "probelog")                         # written once, by rank 0, with every probe
    assert pl.meta["parallel"]["processes"] == 2 and pl.scores.shape == np.asarray(out["scores"]).shape
    np.testing.assert_array_equal(pl.scores, out["scores"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["launch.log", "probelog"]
    assert "[default1]:" in (tmp_path / "launch.log").read_text()    # both ranks' output is in the log


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_dead_rank_stops_the_run_and_it_resumes(reference, tmp_path, strategy):
    cfg = {**par(strategy), "checkpoint": {"every": 4}}
    t0 = time.time()
    with pytest.raises(RankFailed) as e:
        run2({"config": cfg, "out_dir": str(tmp_path), "kill": {"rank": 1, "step": 6}}, timeout_s=300, log_file=tmp_path / "launch.log")
    took = time.time() - t0
    assert e.value.rank == 1 and e.value.exitcode == -9 and "rank 1 of the distributed run died (killed by signal 9 (SIGKILL)" in str(e.value)
    print(f"{strategy}: rank 1 killed after update 6, the run stopped with RankFailed {took:.1f} s after launch")
    assert took < 60, f"{took:.0f} s: the surviving rank waited for its collective timeout"   # torchrun stops it at once
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step0000004"]       # whole, written by rank 0
    ckpt = tmp_path / "checkpoints" / "step0000004"
    ts, whole = load_training_state(ckpt), LM.load(ckpt, device="cpu").model           # the one-process format
    shapes = {n: tuple(p.shape) for n, p in whole.named_parameters()}
    assert ts["optimizer"]["format"] == "ffka.optim-by-name" and set(ts["optimizer"]["state"]) == set(shapes)
    assert all(tuple(st["exp_avg"].shape) == shapes[n] for n, st in ts["optimizer"]["state"].items())   # moments gathered whole
    # a checkpoint of 2 DDP processes resumes in 1 process (here); an FSDP one on 2 FSDP processes again
    out = toy_run({"out_dir": str(tmp_path)}) if strategy == "ddp" else run2({"config": cfg, "out_dir": str(tmp_path)})
    d_loss, d_score = diffs(out, reference[False])
    print(f"{strategy} resumed: max |loss diff| {d_loss:.2e}, max |score diff| {d_score:.2e}")
    assert d_loss <= TOL and d_score <= TOL
    assert not (tmp_path / "checkpoints").exists()                     # the finished run dropped its rolling checkpoints


def test_a_hung_rank_fails_the_run_after_the_collective_timeout(tmp_path):
    t0 = time.time()
    with pytest.raises(RankFailed, match=r"rank 0 of the distributed run failed: RuntimeError: .*(?i:timed out)") as e:
        run2({"config": par("ddp"), "hang": {"rank": 1, "step": 3}}, timeout_s=8, log_file=tmp_path / "launch.log")
    assert 8 <= time.time() - t0 < 60 and e.value.rank == 0


def test_errors_are_those_of_one_process(tmp_path):
    blocker = tmp_path / "a-file"; blocker.write_text("x")
    with pytest.raises(PermissionError, match=r"rank 0: output folder .*a-file/run is not writable"):
        run2({"config": par("ddp"), "out_dir": str(blocker / "run")}, log_file=tmp_path / "1.log")
    with pytest.raises(FloatingPointError, match=r"rank \d: step 2: the training loss is nan .* the run diverged"):
        run2({"config": {**par("fsdp"), "optimizer": {"lr": 1e30}}}, log_file=tmp_path / "2.log")
    with pytest.raises(ValueError, match="parallel.processes=2 but the torch.distributed job has 1 processes"):
        run2({"config": par("ddp")}, processes=1, log_file=tmp_path / "3.log")


def test_a_run_of_several_processes_needs_a_job(monkeypatch):
    for k in ("RANK", "WORLD_SIZE"): monkeypatch.delenv(k, raising=False)
    lm = toy_parts()[0]
    with pytest.raises(RuntimeError, match="no torchrun environment"): engine_for(Parallel(processes=2), lm)
    assert engine_for(Parallel(), lm).world == 1


def _alive(pid: int) -> bool:
    try: status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError: return False
    return "\nState:\tZ" not in status


def test_ctrl_c_stops_every_rank(tmp_path):
    code = (f"from ffka.distributed import launch; launch('dist_toy:toy_run', {{'sleep': 3, 'pid_dir': {str(tmp_path)!r}, "
            f"'config': {{'parallel': {{'processes': 2}}}}}}, 2, env={ENV!r}, log_file={str(tmp_path / 'launch.log')!r})")
    p = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list(tmp_path.glob("rank*.pid"))) < 2 and time.time() < deadline and p.poll() is None: time.sleep(0.2)
    pids = [int(f.read_text()) for f in tmp_path.glob("rank*.pid")]
    assert len(pids) == 2 and all(_alive(q) for q in pids)
    time.sleep(1)
    t0 = time.time(); p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0 and "KeyboardInterrupt: the distributed run was stopped (Ctrl-C)" in err, err[-2000:]
    while any(_alive(q) for q in pids) and time.time() - t0 < 30: time.sleep(0.2)
    assert not any(_alive(q) for q in pids)


def test_gpu_check_dry_mode(tmp_path):
    out = tmp_path / "check.json"
    r = subprocess.run([sys.executable, str(TESTS / "benchmarks" / "gpu_check.py"), "--dry", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(out.read_text())
    assert s["dry"] and s["train"]["max_loss_diff"] == 0.0            # ffka's loop does the bare loop's updates exactly
    assert s["probes"]["sorted"]["max_abs_diff_vs_full"] <= 1e-4 and s["probes"]["packed"]["max_abs_diff_vs_full"] <= 1e-3
    assert s["run"]["finite"] and s["run"]["probe_passes"] == s["run"]["steps"] + 1
    assert set(s["goals"]) == {"mfu_at_least_0_5", "overhead_at_most_5pct", "probes_at_most_0_25s"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FFKA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_pipeline_run_on_two_processes_equals_one(cache, tmp_path, torch_one_thread):
    from ffka.profiles import profile
    from ffka.distributed import launch_injection
    from ffka.pipeline import injection_run
    one = injection_run(profile("smoke"), "mid", cache=False)             # also trains and caches the smoke base model
    launch_injection(profile("smoke", {"parallel": {"processes": 2}}), "mid", tmp_path / "run")
    two = ProbeLog.load(tmp_path / "run" / "probelog")
    d_loss, d_score = np.abs(one.loss - two.loss).max(), np.abs(one.scores - two.scores).max()
    print(f"pipeline smoke: max |loss diff| {d_loss:.2e}, max |score diff| {d_score:.2e}")
    assert d_loss <= TOL and d_score <= TOL and one.meta["fingerprint"] == two.meta["fingerprint"]
    assert two.meta["parallel"]["processes"] == 2 and (tmp_path / "run" / "launch.log").is_file()


def test_ffka_run_with_two_processes(tmp_path, monkeypatch, capsys):
    "`ffka run NOTEBOOK PARAMS --processes 2`: the notebook's injection run goes through torchrun (gloo) and matches one process."
    import json
    from ffka.cli import main
    from ffka.log import ProbeLog
    monkeypatch.setenv("FFKA_CACHE", str(tmp_path / "cache"))
    from ffka.sweep import experiments_dir
    pf = str(experiments_dir() / "params" / "smoke_e01.yaml")
    assert main(["run", "e01_dynamics", pf, "--processes", "2", "--run-dir", str(tmp_path / "r2"), "--no-progress"]) == 0
    meta = json.loads((tmp_path / "r2" / "meta.json").read_text())
    assert meta["params"]["config"] == {"parallel": {"processes": 2}}
    assert main(["run", "e01_dynamics", pf, "--run-dir", str(tmp_path / "r1"), "--no-progress"]) == 0
    logs = {}
    for entry in (tmp_path / "cache" / "injection").iterdir():
        if entry.is_dir() and not entry.name.endswith(".partial"):
            key = json.loads((entry / "KEY.json").read_text())
            logs[key["config"]["parallel"]["processes"]] = ProbeLog.load(entry / "probelog")
    import numpy as np
    assert set(logs) == {1, 2}
    assert np.abs(logs[1].scores - logs[2].scores).max() <= 1e-5 and np.abs(logs[1].loss - logs[2].loss).max() <= 1e-5
    # the experiment's results tables agree too (issue 13: <= 1e-4)
    import pandas as pd
    for name in ("effectivity", "dynamics", "findings"):
        a, b = (pd.read_csv(tmp_path / r / "results" / f"{name}.csv") for r in ("r1", "r2"))
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        num = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c]) and c not in ("seconds",)]
        assert num, name
        diff = np.nanmax(np.abs(a[num].to_numpy(float) - b[num].to_numpy(float)))
        print(f"{name}.csv: max |1 vs 2 processes| {diff:.2e}")
        assert diff <= 1e-4, (name, diff)
