"""ffka.probes: exactness against the naive reference on all 1,950 real probes, batching/order invariance
(hypothesis), hand-computed scores, reduce modes, the BPE boundary rule, and guard rails."""
import logging, math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings, HealthCheck, strategies as st
from torch import nn

from ffka.model import LM
from ffka.probes import ProbeSet, score_probeset, score_probes, score_probes_naive, split_probe
from ffka.testing import ShiftLM, merge_tokenizer

TOL = 1e-5


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def lm(olmo_tokenizer):
    return LM.tiny(olmo_tokenizer, n_layers=2, d_model=64, n_heads=4, mlp_hidden=256, seed=0, device="cpu")


@pytest.fixture(scope="module")
def ps(fk_items, olmo_tokenizer):
    return ProbeSet.from_items(fk_items, olmo_tokenizer)


@pytest.fixture(scope="module")
def naive(lm, ps):
    "The reference: every one of the 1,950 probes alone, full logits (the slow part of this module)."
    return score_probes_naive(lm, lm.tokenizer, ps.meta["input"].tolist(), ps.meta["target"].tolist(), reduce="tokens")


@pytest.fixture(scope="module")
def ref(naive):
    return np.array([x.mean() for x in naive])


def test_probeset_real_dataset(ps, fk_items, olmo_tokenizer):
    assert len(ps) == 1950 and ps.n_tokens == 52835
    assert ps.boundary_ok.all(), "the OLMo tokenizer never merges across the space"
    assert ps.meta[["item_id", "kind", "index"]].drop_duplicates().shape[0] == 1950
    assert ps.meta.groupby("kind").size().to_dict() == {"gen": 650, "hard_gen": 650, "mem": 650}
    for i in (0, 777, 1949):
        row = ps.meta.iloc[i]
        assert olmo_tokenizer.decode(ps.target_ids(i)) == " " + row["target"]
        assert ps.input_ids[i] == olmo_tokenizer(row["input"] + " " + row["target"], add_special_tokens=False).input_ids
        assert ps.target_len[i] == len(olmo_tokenizer(" " + row["target"], add_special_tokens=False).input_ids)
    sub = ProbeSet.from_items(fk_items, olmo_tokenizer, kinds=["hard_gen"], item_ids=[5, 2])
    assert sub.meta["item_id"].tolist() == [2] * 5 + [5] * 5 and set(sub.meta["kind"]) == {"hard_gen"}


def test_all_probes_equal_naive(lm, ps, ref):
    for bs in (64, len(ps)):
        got = score_probeset(lm, ps, batch_size=bs)
        assert got.dtype == np.float64 and got.shape == (1950,)
        diff = np.abs(got - ref).max()
        print(f"batch {bs}: max |fast - naive| over all 1,950 probes = {diff:.2e}")
        assert diff <= TOL
    assert (ref < 0).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_size=st.integers(1, 300), n=st.integers(1, 120), seed=st.integers(0, 2**32 - 1),
       replace=st.booleans(), layout=st.sampled_from(["sorted", "packed"]), row_tokens=st.sampled_from([None, 1, 100, 300]))
def test_any_batching_and_order(lm, ps, ref, batch_size, n, seed, replace, layout, row_tokens):
    idx = np.random.default_rng(seed).choice(len(ps), size=n, replace=replace)  # random subset in random order
    got = score_probeset(lm, ps.subset(idx), batch_size=batch_size, layout=layout, row_tokens=row_tokens)
    assert np.abs(got - ref[idx]).max() <= TOL


def test_reduce_modes(lm, ps, naive):
    idx = np.random.default_rng(1).choice(len(ps), size=200, replace=False)
    sub, tok_ref = ps.subset(idx), [naive[i] for i in idx]
    toks = score_probeset(lm, sub, batch_size=17, reduce="tokens")
    assert toks.dtype == object and len(toks) == 200
    for a, b, n in zip(toks, tok_ref, sub.target_len):
        assert a.dtype == np.float64 and len(a) == n and np.abs(a - b).max() <= TOL
    np.testing.assert_allclose(score_probeset(lm, sub, reduce="sum"), [x.sum() for x in tok_ref], rtol=0, atol=TOL * 8)
    np.testing.assert_allclose(score_probeset(lm, sub, reduce="first"), [x[0] for x in tok_ref], rtol=0, atol=TOL)
    np.testing.assert_allclose(score_probeset(lm, sub, reduce="mean"), [x.mean() for x in tok_ref], rtol=0, atol=TOL)


def test_full_logits_method_and_score_probes(lm, ps, ref):
    idx = np.arange(0, 1950, 13)
    sub = ps.subset(idx)
    assert np.abs(score_probeset(lm, sub, method="full", batch_size=32) - ref[idx]).max() <= TOL
    ins, tgs = sub.meta["input"].tolist(), sub.meta["target"].tolist()
    assert np.abs(score_probes(lm, None, ins, tgs, batch_size=9) - ref[idx]).max() <= TOL
    # a plain transformers model is accepted too, and gives the same numbers as the LM
    np.testing.assert_array_equal(score_probes(lm.model, lm.tokenizer, ins, tgs), score_probes(lm, None, ins, tgs))


def test_packed_layout_all_probes(lm, ps, ref):
    got = score_probeset(lm, ps, layout="packed", row_tokens=256, batch_size=256)
    print(f"packed: max |fast - naive| over all 1,950 probes = {np.abs(got - ref).max():.2e}")
    assert np.abs(got - ref).max() <= TOL


def test_padding_never_changes_a_score(lm, ps):
    short, long_ = int(np.argmin(ps.lengths)), int(np.argmax(ps.lengths))
    alone = score_probeset(lm, ps.subset([short]), batch_size=1)
    padded = score_probeset(lm, ps.subset([long_, short]), batch_size=2)  # the short row is padded by ~78 tokens
    assert abs(padded[1] - alone[0]) <= 1e-6
    other_pad = ps.subset([long_, short]); other_pad.pad_id = 50000
    np.testing.assert_array_equal(score_probeset(lm, other_pad, batch_size=2), padded)


def test_train_mode_restored(lm, ps):
    sub = ps.subset(np.arange(10))
    lm.model.eval(); e = score_probeset(lm, sub)
    lm.model.train()
    try:
        t = score_probeset(lm, sub)
        assert lm.model.training and all(m.training for m in lm.model.modules())
    finally: lm.model.eval()
    np.testing.assert_array_equal(t, e)
    assert torch.is_grad_enabled()


def test_cpu_bf16_close(lm, ps, ref):
    idx = np.arange(0, 1950, 25)
    got = score_probeset(LM(lm.model, lm.tokenizer, cpu_bf16=True), ps.subset(idx))
    assert np.isfinite(got).all() and np.abs(got - ref[idx]).max() < 0.05


# ----- hand-computed scores ------------------------------------------------------------------------

V, A = 11, 3.0
HIT, MISS = A - math.log(math.exp(A) + V - 1), -math.log(math.exp(A) + V - 1)


def _hand_set():
    rows = [[1, 2, 3, 5], [4, 5, 6], [7, 8, 9, 10, 0, 1, 3], [2, 9]]
    n = [2, 1, 4, 1]
    expect = [[HIT, MISS], [HIT], [HIT, HIT, HIT, MISS], [MISS]]
    return ProbeSet(rows, n, [True] * 4, pd.DataFrame({"item_id": range(4)}), pad_id=0), expect


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 64])
@pytest.mark.parametrize("method", ["targets", "full"])
@pytest.mark.parametrize("layout", ["sorted", "packed"])
def test_hand_computed(batch_size, method, layout):
    hps, expect = _hand_set()
    m = ShiftLM(V, A)
    kw = dict(batch_size=batch_size, method=method, layout=layout, row_tokens=10)
    for reduce, f in (("mean", np.mean), ("sum", np.sum), ("first", lambda e: e[0])):
        np.testing.assert_allclose(score_probeset(m, hps, reduce=reduce, **kw), [f(e) for e in expect], rtol=0, atol=1e-6)
    for g, e in zip(score_probeset(m, hps, reduce="tokens", **kw), expect):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)


class _Capped(ShiftLM):
    "A model that soft-caps its logits in forward and says so in its config (like Gemma 2)."
    def __init__(self, vocab, a, cap):
        super().__init__(vocab, a); self.config.final_logit_softcapping = cap
    def forward(self, input_ids, **kw):
        l = self.head(self.embed(input_ids)); c = self.config.final_logit_softcapping
        return SimpleNamespace(logits=torch.tanh(l / c) * c)


class _Unknown(ShiftLM):
    "A model that rescales its logits in forward without a config entry: the head-only path must refuse it."
    def forward(self, input_ids, **kw): return SimpleNamespace(logits=self.head(self.embed(input_ids)) * 0.25)


def test_logit_softcapping_respected():
    hps, _ = _hand_set()
    m = _Capped(V, 6.0, cap=2.0)
    a_eff = 2.0 * math.tanh(6.0 / 2.0)
    hit = a_eff - math.log(math.exp(a_eff) + V - 1)
    got = score_probeset(m, hps, reduce="tokens")
    np.testing.assert_allclose(got[1], [hit], atol=1e-6)
    np.testing.assert_allclose(score_probeset(m, hps), score_probeset(m, hps, method="full"), atol=1e-6)


def test_unknown_logit_transform_refused():
    hps, expect = _hand_set()
    with pytest.raises(RuntimeError, match="differ from the model's forward"): score_probeset(_Unknown(V, 8.0), hps)
    np.testing.assert_allclose(score_probeset(_Unknown(V, 4 * A), hps, method="full"), [np.mean(e) for e in expect], atol=1e-6)


class _Leaky(ShiftLM):
    "A causal trunk that averages all earlier tokens of the row, ignoring position ids: packing must be refused."
    def __init__(self, vocab, a):
        super().__init__(vocab, a)
        emb = self.embed
        class T(nn.Module):
            def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None):
                e = emb(input_ids); c = e.cumsum(1) / torch.arange(1, e.shape[1] + 1)[None, :, None]
                return SimpleNamespace(last_hidden_state=c)
        self.trunk = T()
    def forward(self, input_ids, **kw): return SimpleNamespace(logits=self.head(self.trunk(input_ids).last_hidden_state))


def test_packing_refused_when_model_ignores_positions():
    hps, _ = _hand_set()
    m = _Leaky(V, A)
    with pytest.raises(RuntimeError, match="does not treat restarting position_ids"):
        score_probeset(m, hps, layout="packed", row_tokens=20)
    sorted_scores = score_probeset(m, hps)  # one probe per row is fine
    np.testing.assert_allclose(sorted_scores, score_probeset(m, hps, batch_size=1), atol=1e-6)


# ----- the token boundary ---------------------------------------------------------------------------

def test_split_probe_rule():
    assert split_probe([1, 2], [1, 2, 3, 4], [3, 4]) == (2, True)
    assert split_probe([1, 2], [1, 7, 4], [3, 4]) == (2, False)     # merge: last n = 2
    assert split_probe([1, 2], [1, 2, 3, 4], [9, 4]) == (2, False)  # prefix fine, target tokenized differently
    assert split_probe([1], [6], [3, 4]) == (1, False)               # never the whole text


def test_bpe_merge_across_boundary(caplog):
    mt = merge_tokenizer()
    with caplog.at_level(logging.WARNING, logger="ffka.probes"):
        mps = ProbeSet.from_texts(mt, ["is", "x", "xis"], ["Q", "Q", "xQ"])
    assert mps.boundary_ok.tolist() == [False, True, False]
    assert "1 of" not in caplog.text and "2 of 3 probes" in caplog.text and "'is' + 'Q'" in caplog.text
    # official convention: the last len(tokens(" " + target)) tokens of the joined text
    for i, (inp, tgt) in enumerate([("is", "Q"), ("x", "Q"), ("xis", "xQ")]):
        n = len(mt(" " + tgt, add_special_tokens=False).input_ids)
        joined = mt(inp + " " + tgt, add_special_tokens=False).input_ids
        assert mps.target_len[i] == min(n, len(joined) - 1)
        assert mps.target_ids(i) == joined[len(joined) - mps.target_len[i]:]
    # the fast scorer and the reference agree on flagged probes too
    tiny = LM.tiny(mt, n_layers=1, d_model=16, n_heads=2, mlp_hidden=32, device="cpu")
    ins, tgs = ["is", "x", "xis"], ["Q", "Q", "xQ"]
    np.testing.assert_allclose(score_probes(tiny, None, ins, tgs, batch_size=2),
                               score_probes_naive(tiny, None, ins, tgs), rtol=0, atol=TOL)


# ----- guard rails ----------------------------------------------------------------------------------

def test_errors_and_edge_cases(lm, ps):
    sub = ps.subset([0, 1])
    with pytest.raises(ValueError, match="'median' is not one of"): score_probeset(lm, sub, reduce="median")
    with pytest.raises(ValueError, match="method 'logits'"): score_probeset(lm, sub, method="logits")
    with pytest.raises(ValueError, match="layout 'ragged'"): score_probeset(lm, sub, layout="ragged")
    with pytest.raises(ValueError, match="batch_size: must be a whole number >= 1"): score_probeset(lm, sub, batch_size=0)
    with pytest.raises(ValueError, match="differs from the model's device"): score_probeset(lm, sub, device="meta")
    assert score_probeset(lm, ps.subset([])).shape == (0,)
    assert score_probeset(lm, ps.subset([]), reduce="tokens").shape == (0,)
    with pytest.raises(ValueError, match="probe 1: inputs\\[1\\] is empty"): ProbeSet.from_texts(lm.tokenizer, ["a", " "], ["b", "c"])
    with pytest.raises(ValueError, match="target_len has 1 rows but input_ids has 2"):
        ProbeSet([[1, 2], [3, 4]], [1], [True, True], pd.DataFrame({"item_id": [0, 1]}))
    with pytest.raises(ValueError, match="boolean mask has 3 entries"): ps.subset(np.ones(3, dtype=bool))
    m = np.zeros(len(ps), dtype=bool); m[[4, 2]] = True
    assert ps.subset(m).input_ids == [ps.input_ids[2], ps.input_ids[4]]


@pytest.mark.parametrize("kw,name", [(dict(batch_size=0), "batch_size"), (dict(batch_size=-3), "batch_size"),
                                     (dict(batch_size=2.5), "batch_size"), (dict(batch_size=True), "batch_size"),
                                     (dict(layout="packed", row_tokens=0), "row_tokens"),
                                     (dict(layout="packed", row_tokens=-1), "row_tokens")])
def test_sizes_rejected_naming_the_parameter(kw, name):
    "No reference data needed: the hand-made model and probe set."
    hps, _ = _hand_set()
    with pytest.raises(ValueError, match=f"^{name}: must be a whole number >= 1, got {kw[name]!r}$"):
        score_probeset(ShiftLM(V, A), hps, **kw)
    with pytest.raises(ValueError, match=f"^{name}: must be a whole number >= 1"):
        score_probes(ShiftLM(V, A), merge_tokenizer(), ["is"], ["Q"], **kw)
