"""ffka.train: the injection loop, cadences, the optimizer and its groups, checkpoints and exact resume.

Everything is tiny (1-layer d=32 models, a few steps) so the module runs in well under a minute on 2 cores."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ffka.config import Batch, Checkpointing, LRSchedule, Optimizer, Protocol, TrainConfig
from ffka.log import ProbeLog
from ffka.model import LM
from ffka.probes import ProbeSet
from ffka.schedule import InjectionSchedule
from ffka.streams import PackedTextStream
from ffka.train import Start, make_optimizer, optimizer_state, param_groups, probe_steps, run_injection

TINY = dict(n_layers=1, d_model=32, n_heads=2, mlp_hidden=64, max_len=64)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dist_toy import _item, toy_docs, toy_tokenizer   # the toy world shared with the distributed tests


@pytest.fixture(scope="session")
def toy_tok():
    return toy_tokenizer()


@pytest.fixture(scope="session")
def toy(toy_tok):
    items = [_item(i) for i in range(6)]
    split = {"paraphrase": [0, 1], "duplication": [2, 3], "once": [4], "control": [5]}
    sched = InjectionSchedule.paper(items, split, interval_steps=4, n_injections=3)
    probes = ProbeSet.from_items(items, toy_tok)
    probes.meta["scenario"] = [next((s for s, ids in split.items() if i in ids), "control") for i in probes.meta.item_id]
    return dict(items=items, split=split, sched=sched, probes=probes)


def cfg(steps=12, **changes):
    base = TrainConfig(protocol=Protocol(steps=steps, interval_steps=4, n_injections=3 if steps >= 10 else 1, window=2, cadence="every"),
                       optimizer=Optimizer(lr=1e-2), batch=Batch(rows=8, seq_len=8, grad_accum=2))
    return base.replace(**changes)


def run(toy_tok, toy, c=None, **kw):
    lm = LM.tiny(toy_tok, seed=0, device="cpu", **TINY)
    return run_injection(lm, toy["sched"] if (c or cfg()).protocol.steps > 8 else InjectionSchedule(), PackedTextStream(toy_docs, toy_tok, seq_len=8),
                         toy["probes"], c or cfg(), **kw)


@pytest.fixture(scope="session")
def reference(toy_tok, toy):
    return run(toy_tok, toy)


def test_run_continues_lr_schedule(toy_tok, toy):
    sched = LRSchedule("cosine", 1e-2, warmup_steps=2, total_steps=100)
    seen = []
    run(toy_tok, toy, cfg(optimizer={"lr": None}), start=Start(30, sched), callback=lambda s, info: seen.append(info["lr"]))
    assert seen == [sched(30 + s) for s in range(12)]   # update s+1 uses lr(start.step + s), as OLMo
    seen.clear()
    run(toy_tok, toy, cfg(optimizer={"lr": "checkpoint"}), start=Start(30, sched), callback=lambda s, info: seen.append(info["lr"]))
    assert seen == [sched(30)] * 12                     # held at the checkpoint's LR


def test_probelog_contents(reference, toy):
    pl = reference
    assert pl.steps.tolist() == list(range(13)) and pl.scores.shape == (13, len(toy["probes"])) and len(pl.loss) == 12
    assert pl.scores.dtype == np.float64 and (pl.scores <= 0).all()
    assert (pl.probes.query("item_id == 5").scenario == "control").all() and pl.meta["n_control_probes"] == 3
    assert pl.injections == {0: [0, 4, 8], 1: [0, 4, 8], 2: [0, 4, 8], 3: [0, 4, 8], 4: [0]}
    assert pl.meta["injected"][0]["n_sequences"] == 5 and pl.meta["injected"][4]["n_sequences"] == 4
    assert pl.meta["knowledge_fraction"][0] == pytest.approx(5 * 6 / 64)                # 5 passages of 6 tokens in 8 x 8
    assert pl.meta["tokens_per_step"] == 64 and pl.meta["seed"] == 0 and pl.meta["protocol"]["window"] == 2
    assert len(pl.meta["fingerprint"]) == 16 and pl.meta["optimizer"] == "fresh"
    gain = pl.scores_at(1) - pl.scores_at(0)
    inj = pl.probes.item_id.isin([0, 1, 2, 3, 4]).to_numpy()
    assert gain[inj].mean() > gain[~inj].mean()                                         # injected items gain more


def test_deterministic_and_windows_equal_every(toy_tok, toy, reference):
    assert run(toy_tok, toy).equal(reference)                                            # same seed: bit-identical
    win = run(toy_tok, toy, cfg(protocol={"cadence": "windows", "window": 1, "n_grid": 3}))
    assert len(win.steps) < len(reference.steps)
    assert np.array_equal(win.scores, reference.scores[win.steps]) and np.array_equal(win.loss, reference.loss)


def test_grad_accum_matches_full_batch(toy_tok, toy, reference):
    full = run(toy_tok, toy, cfg(batch={"grad_accum": 1}))
    np.testing.assert_allclose(full.loss, reference.loss, rtol=1e-5)
    np.testing.assert_allclose(full.scores, reference.scores, atol=1e-4)


@pytest.mark.parametrize("kill_at", [5, 7])
def test_kill_and_resume_is_bit_identical(toy_tok, toy, reference, tmp_path, kill_at):
    class Killed(Exception): pass
    def cb(step, info):
        if step == kill_at: raise Killed
    c = cfg(checkpoint={"every": 3})
    with pytest.raises(Killed): run(toy_tok, toy, c, out_dir=tmp_path, callback=cb)
    partial = ProbeLog.load(tmp_path / "probelog")                                       # saved as it went
    assert partial.steps.max() == 3 * (kill_at // 3) and len(partial.loss) == 3 * (kill_at // 3)
    resumed = run(toy_tok, toy, c, out_dir=tmp_path)
    assert resumed.equal(reference) and ProbeLog.load(tmp_path / "probelog").equal(reference)
    assert not (tmp_path / "checkpoints").exists()                                     # a finished run keeps only its log
    assert run(toy_tok, toy, c, out_dir=tmp_path).equal(reference)                     # finished: returned as it is
    with pytest.raises(Killed): run(toy_tok, toy, c, out_dir=tmp_path / "b", callback=cb)
    with pytest.raises(ValueError, match="another configuration"):
        run(toy_tok, toy, c.replace(optimizer={"lr": 2e-2}), out_dir=tmp_path / "b")


def test_damaged_newest_checkpoint_falls_back(toy_tok, toy, reference, tmp_path, caplog):
    class Killed(Exception): pass
    def cb(step, info):
        if step == 7: raise Killed
    c = cfg(checkpoint={"every": 3, "keep": 2})
    with pytest.raises(Killed): run(toy_tok, toy, c, out_dir=tmp_path, callback=cb)
    bad = tmp_path / "checkpoints" / "step0000006" / "model.safetensors"
    bad.write_bytes(bad.read_bytes()[:100])                                             # truncated, as a full disk leaves it
    assert run(toy_tok, toy, c, out_dir=tmp_path).equal(reference)
    assert "model.safetensors is damaged" in caplog.text and "step0000006" in caplog.text


def test_checkpoint_save_is_atomic(toy_tok, toy, tmp_path, monkeypatch):
    "A kill in the middle of writing a checkpoint leaves the previous one usable and no half folder in its place."
    import ffka.model
    c = cfg(checkpoint={"every": 3, "keep": 2})
    real, calls = ffka.model.LM.save, []
    def dying_save(self, d, **kw):
        calls.append(d)
        if len(calls) == 2: (type(d)(d)).mkdir(parents=True, exist_ok=True); raise KeyboardInterrupt("killed while saving")
        return real(self, d, **kw)
    monkeypatch.setattr(ffka.model.LM, "save", dying_save)
    with pytest.raises(KeyboardInterrupt): run(toy_tok, toy, c, out_dir=tmp_path)
    monkeypatch.setattr(ffka.model.LM, "save", real)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step*")) == ["step0000003"]
    assert run(toy_tok, toy, c, out_dir=tmp_path).steps[-1] == 12


def test_divergence_stops_the_run(toy_tok, toy, tmp_path):
    with pytest.raises(FloatingPointError, match=r"step \d+: the training loss is .* the run diverged"):
        run(toy_tok, toy, cfg(optimizer={"lr": 1e6}), out_dir=tmp_path)
    assert not (tmp_path / "probelog").exists()                                        # nothing stored as a result


def test_unwritable_output_fails_before_training(toy_tok, toy, tmp_path):
    "An output folder that cannot be written fails at once, not after the training (the issue's ProbeLog-lost case)."
    (tmp_path / "file").write_text("x")                   # a folder below a file cannot be created, even by root
    seen = []
    with pytest.raises(PermissionError, match="not writable .* nothing was trained"):
        run(toy_tok, toy, out_dir=tmp_path / "file" / "run", callback=lambda s, i: seen.append(s))
    assert seen == []


def test_optimizer_state_loaded_or_reset(toy_tok, toy):
    lm = LM.tiny(toy_tok, seed=0, device="cpu", **TINY)
    opt = make_optimizer(lm.model, Optimizer(), 1e-2)
    x = PackedTextStream(toy_docs, toy_tok, 8).batch(8)
    lm.model(input_ids=x).logits.float().logsumexp(-1).mean().backward(); opt.step()
    state = optimizer_state(opt)
    a = run(toy_tok, toy, start=Start(0, None, state))
    b = run(toy_tok, toy, cfg(optimizer={"state": "reset"}), start=Start(0, None, state))
    assert a.meta["optimizer"] == "loaded" and b.meta["optimizer"] == "fresh"
    assert not np.array_equal(a.scores[1:], b.scores[1:]) and np.array_equal(a.scores[0], b.scores[0])


def test_olmo_param_groups_on_the_tiny_olmo(toy_tok):
    "OLMo's get_param_groups: Linear weights decay; the embedding does not (the HF OLMo has no norm parameters)."
    lm = LM.tiny(toy_tok, seed=0, device="cpu", **TINY)
    on, off = param_groups(lm.model, 0.1)
    assert off["names"] == ["model.embed_tokens.weight"] and off["weight_decay"] == 0.0
    assert all(n.endswith("proj.weight") or n == "lm_head.weight" for n in on["names"]) and on["weight_decay"] == 0.1
    assert len(on["params"]) + len(off["params"]) == len(list(lm.model.parameters()))


def test_overflow_and_late_injections_are_refused(toy_tok, toy):
    with pytest.raises(ValueError, match="do not fit in 2 rows"):
        run(toy_tok, toy, cfg(batch={"rows": 2, "grad_accum": 1}))    # 5 passages of 6 tokens cannot share 2 rows of 8
    with pytest.raises(ValueError, match="injections at steps \\[8\\] are not inside the run"):
        lm = LM.tiny(toy_tok, seed=0, device="cpu", **TINY)
        run_injection(lm, toy["sched"], PackedTextStream(toy_docs, toy_tok, 8), toy["probes"],
                      cfg().replace(protocol={"steps": 8, "n_injections": 2}))


def test_probe_steps_windows():
    p = Protocol()
    st = probe_steps(p.steps, p.injection_steps, "windows", p.window, p.n_grid)
    for t in p.injection_steps: assert set(range(t, t + p.window + 1)) <= set(st.tolist())
    assert st[0] == 0 and st[-1] == p.steps and np.all(np.diff(st) > 0)
    with pytest.raises(ValueError, match="cadence"): probe_steps(5, [0], "sometimes")
