"""ffka.config: validation that names the field, round trips, per-stage values, profiles (hand cases + hypothesis)."""
import math
import pytest
from hypothesis import given, settings, strategies as st

from ffka.config import Batch, LRSchedule, Optimizer, Protocol, RunConfig, nest, per_stage
from ffka.profiles import PROFILE_CHANGES, profile


def test_the_embedded_default_is_defined_once():
    "RunConfig() is the embedded default; the 'embedded' profile changes nothing; every profile validates."
    assert profile("embedded") == RunConfig() and PROFILE_CHANGES["embedded"] == {}
    for name in PROFILE_CHANGES: assert isinstance(profile(name), RunConfig)


@pytest.mark.parametrize("changes,msg", [
    ({"protocol": {"steps": "12"}}, "protocol.steps: must be an int, got '12' (str)"),
    ({"protocol": {"steps": 12.7}}, "protocol.steps: must be an int, got 12.7"),
    ({"protocol": {"steps": -5}}, "protocol.steps: must be >= 1, got -5"),
    ({"protocol": {"window": -1}}, "protocol.window: must be >= 1"),
    ({"protocol": {"n_grid": -3}}, "protocol.n_grid: must be >= 0"),
    ({"protocol": {"steps": 60}}, "the last injection (step 90) and its window"),
    ({"batch": {"rows": True}}, "batch.rows: must be an int, got True (bool)"),
    ({"batch": {"grad_accum": 0}}, "batch.grad_accum: must be >= 1"),
    ({"batch": {"grad_accum": -2}}, "batch.grad_accum: must be >= 1"),
    ({"batch": {"grad_accum": 5}}, "cannot be split into batch.grad_accum=5"),
    ({"batch": {"probe_batch_size": 0}}, "batch.probe_batch_size: must be >= 1"),
    ({"checkpoint": {"every": -1}}, "checkpoint.every: must be >= 0"),
    ({"checkpoint": {"save_log_every": 0}}, "checkpoint.save_log_every: must be >= 1"),
    ({"optimizer": {"lr": -1}}, "optimizer.lr: must be > 0"),
    ({"optimizer": {"lr": "initial"}}, "optimizer.lr: must be null, 'checkpoint'"),
    ({"optimizer": {"betas": [0.9]}}, "optimizer.betas: must be two numbers"),
    ({"knowledge": {"counts": {"paraphrase": -1}}}, "knowledge.counts: counts must be whole numbers >= 0"),
    ({"model": {"d_model": 100, "n_heads": 3}}, "model.d_model: 100 is not divisible by model.n_heads=3"),
    ({"base": {"stages": {"mid": 5000}}}, "base.stages: stage steps"),
    ({"protocol": {"stpes": 5}}, "protocol: unknown key(s) 'stpes' (did you mean 'steps'?)"),
    ({"sede": 1}, "unknown key(s) 'sede' (did you mean 'seed'"),
    ({"protocol": 5}, "protocol: must be a mapping of its fields"),
    ({"knowledge": {"source": "fk.json"}}, "knowledge.source must be 'world'"),
])
def test_bad_values_name_the_field(changes, msg):
    with pytest.raises(ValueError) as e: RunConfig.from_dict(changes)
    assert msg in str(e.value), str(e.value)


def test_round_trip_dotted_changes_and_per_stage():
    c = RunConfig.from_dict(nest({"protocol.steps": 300, "optimizer.lr": {"early": 1e-3, "mid": "checkpoint"}, "seed": 2}))
    assert RunConfig.from_dict(c.to_dict()) == c and c.protocol.steps == 300 and c.seed == 2
    assert c.for_stage("early").optimizer.lr == 1e-3 and c.for_stage("mid").optimizer.lr == "checkpoint"
    with pytest.raises(ValueError, match="optimizer.lr: no entry for stage 'late'"): c.for_stage("late")
    assert per_stage({"kind": "cosine", "lr": 1.0, "total_steps": 10}, "mid")["kind"] == "cosine"   # LRSchedule fields are one value
    # dict-valued leaves are replaced whole: what a file says is what runs
    assert RunConfig.from_dict(nest({"knowledge.counts": {"once": 3}})).knowledge.counts == {"once": 3}


def test_paper_profiles_follow_olmo_and_the_revision_table():
    "The paper profiles continue OLMo's trainer checkpoints with OLMo's AdamW; their revisions are ffka.olmo.PAPER_CHECKPOINTS'."
    from ffka.olmo import PAPER_CHECKPOINTS
    for name, size in (("paper_7b", "7B"), ("paper_1b", "1B")):
        c = profile(name)
        o = c.optimizer
        assert (o.state, o.lr, tuple(o.betas), o.eps, o.decay_embeddings, o.decay_norms) == ("continue", None, (0.9, 0.95), 1e-5, False, False)
        assert c.model.dtype is None                                     # fp32 master weights, bf16 autocast on the GPU
        table = {r["stage"]: r for r in PAPER_CHECKPOINTS if r["model"] == size}
        for st in ("early", "mid", "late"):
            assert c.model.revisions[st] == table[st]["revision"] and f"step{table[st]['step']}-unsharded" in c.model.checkpoints[st]
        assert c.batch.rows == 2048 and c.batch.seq_len == 2048 and c.protocol.steps == 2500 and c.protocol.cadence == "every"
    assert profile("paper_7b").parallel.strategy == "fsdp" and profile("paper_7b").parallel.processes == 8


def test_embedded_default_protocol_choices():
    "Time-scaled AdamW memory for the 10x shorter protocol; the checkpoint's LR held constant; OLMo's eps and groups."
    c = RunConfig()
    assert c.optimizer.lr == "checkpoint" and c.optimizer.eps == 1e-5 and not c.optimizer.decay_embeddings
    assert c.optimizer.betas == (round(0.9 ** 10, 4), round(0.95 ** 10, 4)) and c.base.optimizer.betas == (0.9, 0.95)
    assert c.protocol.window == 5 and round(c.optimizer.betas[0] ** c.protocol.window, 3) == round(0.9 ** 50, 3)
    st = c.base.stages
    assert st["mid"] - st["early"] == st["late"] - st["mid"] and c.base.schedule == "linear"   # App. F's one LR = the mid LR


def test_olmo_learning_rates():
    c1b = LRSchedule("cosine", 4e-4, warmup_steps=2000, total_steps=739_328)
    assert c1b(40_000) == pytest.approx(3.976e-4, abs=1e-7) and c1b(358_000) == pytest.approx(2.297e-4, abs=2e-7)
    for step, tokens, lr in [(40_000, 176.9e9, 2.79879e-4), (113_000, 500e9, 2.374e-4), (339_000, 1.5e12, 1.010e-4)]:
        M = step + int((2e12 - tokens) // (2048 * 2048))
        assert LRSchedule("linear", 3e-4, 5000, M)(step) == pytest.approx(lr, rel=2e-3)


@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 5000), interval=st.integers(1, 300), n=st.integers(0, 20), window=st.integers(1, 100),
       cadence=st.sampled_from(["every", "windows"]), n_grid=st.integers(0, 60))
def test_protocol_property(steps, interval, n, window, cadence, n_grid):
    "A protocol is valid exactly when its last injection's window ends inside the run; valid ones round-trip."
    fits = n == 0 or (n - 1) * interval + window <= steps
    kw = dict(steps=steps, interval_steps=interval, n_injections=n, window=window, cadence=cadence, n_grid=n_grid)
    if not fits:
        with pytest.raises(ValueError, match="the last injection"): Protocol(**kw)
        return
    p = Protocol(**kw)
    assert Protocol.from_dict(p.to_dict()) == p and all(0 <= t < steps for t in p.injection_steps)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["rows", "seq_len", "grad_accum", "probe_batch_size"]),
       value=st.one_of(st.integers(-5, 0), st.floats(allow_nan=True), st.text(max_size=3), st.booleans(), st.none()))
def test_batch_rejects_every_bad_value_naming_the_field(field, value):
    if field == "seq_len" and isinstance(value, int) and not isinstance(value, bool) and value >= 2: return
    with pytest.raises(ValueError, match=f"batch.{field}:"): Batch(**{field: value})


def test_docs_cover_every_field():
    docs = dict((n, d) for n, _, d in RunConfig.docs())
    assert "protocol.window" in docs and all(docs[k] for k in docs if "." in k)
