"""ffka.log: the ProbeLog is torch-free, saves atomically and names the damaged file."""
import json, subprocess, sys
import numpy as np
import pandas as pd
import pytest

from ffka.log import ProbeLog


def _log():
    return ProbeLog(np.array([0, 1, 3]), -np.arange(6.).reshape(3, 2), pd.DataFrame(dict(item_id=[0, 1], kind=["mem"] * 2, index=[0, 0],
                    scenario=["once", "control"])), np.array([3.0, 2.9, 2.8]), {0: [0]}, {"seed": 0, "protocol": {"window": 1}})


def test_analysis_needs_no_torch():
    code = ("import sys; import ffka.log, ffka.metrics, ffka.fit, ffka.config, ffka.core; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:3]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_round_trip_and_damage(tmp_path):
    pl = _log(); pl.save(tmp_path)
    assert ProbeLog.load(tmp_path).equal(pl) and ProbeLog.load(tmp_path).meta["protocol"] == {"window": 1}
    (tmp_path / "probes.parquet").write_bytes(b"PAR1 nonsense")
    with pytest.raises(ValueError, match="probes.parquet: cannot read the probe table"): ProbeLog.load(tmp_path)
    pl.save(tmp_path); ProbeLog(pl.steps, np.c_[pl.scores, pl.scores[:, :1]], pd.concat([pl.probes, pl.probes.iloc[:1]]),
                                 pl.loss, pl.injections).save(tmp_path / "other")
    (tmp_path / "scores.npz").write_bytes((tmp_path / "other" / "scores.npz").read_bytes())
    with pytest.raises(ValueError, match="files from different runs"): ProbeLog.load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not ProbeLog metadata"): ProbeLog.load(tmp_path)


def test_failed_save_leaves_no_temp_and_the_previous_log(tmp_path, monkeypatch):
    pl = _log(); pl.save(tmp_path)
    def full(*a, **k): raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError, match="could not write .*scores.npz"): ProbeLog(pl.steps, pl.scores * 2, pl.probes, pl.loss, pl.injections).save(tmp_path)
    monkeypatch.undo()
    assert ProbeLog.load(tmp_path).equal(pl) and sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "probes.parquet", "scores.npz"]
