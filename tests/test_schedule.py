"""ffka.schedule: the official injection map token for token, packing rule, serialisation."""
import logging
import pytest
import torch
from hypothesis import given, settings, strategies as st

from ffka.schedule import InjectionSchedule, Injection, inject_batch, injection_stats, pack_groups, injection_steps

EOS = 50279


def test_paper_layout_token_for_token(fk_items, olmo_tokenizer):
    s = InjectionSchedule.paper(fk_items)
    assert s.steps == list(range(0, 1000, 100))
    t0 = s.tokens_at(0, olmo_tokenizer)
    assert len(t0) == 120
    for i, seq in enumerate(t0):  # items 0..119, original text, item order
        assert seq == olmo_tokenizer.encode(fk_items[i].context + "<|endoftext|>")
        assert seq[-1] == EOS
    assert sum(map(len, t0)) == 59_374
    for k, step in enumerate(s.steps[1:], start=1):
        seqs = s.tokens_at(step, olmo_tokenizer)
        assert len(seqs) == 80
        expect = [fk_items[i].paraphrases[k - 1] for i in range(40)] + [fk_items[i].context for i in range(40, 80)]
        assert seqs == [olmo_tokenizer.encode(t + "<|endoftext|>") for t in expect]
        assert [i.item_id for i in s.injections_at(step)] == list(range(80))
    steps = s.item_steps()
    assert all(steps[i] == s.steps for i in range(80)) and all(steps[i] == [0] for i in range(80, 120))
    assert not set(steps) & set(range(120, 130))  # controls never injected


def test_save_load_roundtrip(fk_items, tmp_path):
    s = InjectionSchedule.paper(fk_items, interval_steps=20, n_injections=4)
    for suf in (".json", ".yaml"):
        assert InjectionSchedule.load(s.save(tmp_path / f"s{suf}")) == s
    with pytest.raises(ValueError, match="suffix"):
        s.save(tmp_path / "s.txt")


def test_constructors_and_merge(fk_items):
    para = InjectionSchedule.paraphrase(fk_items[:2], [3, 7, 11])
    assert [i.variant for i in para.injections_at(11)] == ["paraphrase-1"] * 2
    dup = InjectionSchedule.duplication(fk_items[2:3], interval_steps=4, n_injections=3, start=3)
    m = para + dup
    assert m.steps == [3, 7, 11] and [i.item_id for i in m.injections_at(7)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 50: paraphrases has 0 entries"):
        InjectionSchedule.paraphrase(fk_items[50:51], [0, 1])
    with pytest.raises(ValueError, match="strictly increasing"):
        InjectionSchedule.once(fk_items[:1], 0) + InjectionSchedule.duplication(fk_items[:1], [5, 5])


@settings(max_examples=60, deadline=None)
@given(B=st.integers(1, 6), L=st.integers(4, 24), lens=st.lists(st.integers(1, 5), max_size=14))
def test_inject_batch_rule(B, L, lens):
    batch = torch.arange(B * L).view(B, L) + 1000
    seqs = [[100 * (j + 1) + t for t in range(n)] for j, n in enumerate(lens)]
    groups = pack_groups(len(seqs), B)
    assert [j for g in groups for j in g] == list(range(len(seqs)))  # every sequence placed once, in order
    assert max(map(len, groups), default=0) - min(map(len, groups), default=0) <= 1 or len(seqs) <= B
    fits = all(sum(lens[j] for j in g) <= L for g in groups)
    if not fits:
        with pytest.raises(ValueError, match="injected tokens"):
            inject_batch(batch, seqs)
        return
    out = inject_batch(batch, seqs)
    assert out.shape == batch.shape
    for r in range(B):
        prefix = [t for j in groups[r] for t in seqs[j]] if r < len(groups) else []
        assert out[r].tolist() == (prefix + batch[r].tolist())[:L]
    st_ = injection_stats(seqs, B, L)
    assert st_["tokens"] == sum(lens) and st_["tokens_cut"] == 0


def test_overflow_warns_with_counts(caplog):
    batch = torch.zeros(2, 5, dtype=torch.long)
    with caplog.at_level(logging.WARNING, logger="ffka.schedule"):
        out = inject_batch(batch, [[1] * 4, [2] * 4, [3] * 4], overflow="warn")
    assert "1 of 2 rows" in caplog.text and "3 injected tokens would be cut" in caplog.text
    assert out[0].tolist() == [1, 1, 1, 1, 2]


def test_official_small_batch_packing():
    # 120 passages into a 16-row batch: 8 rows of 8 and 8 rows of 7, contiguous (split_and_concatenate)
    g = pack_groups(120, 16)
    assert [len(x) for x in g] == [8] * 8 + [7] * 8 and g[8][0] == 64
    assert injection_steps(20, 3) == [0, 20, 40]


# ----- input checks: every size names its parameter (no reference data needed)

@pytest.mark.parametrize("call,message", [
    (lambda: injection_steps(0), "interval_steps: must be a whole number >= 1, got 0"),
    (lambda: injection_steps(10, 0), "n_injections: must be a whole number >= 1, got 0"),
    (lambda: injection_steps(10, 3, start=-5), "start: must be a whole number >= 0, got -5"),
    (lambda: injection_steps(2.5), "interval_steps: must be a whole number >= 1, got 2.5"),
    (lambda: pack_groups(4, 0), "n_rows: must be a whole number >= 1, got 0"),
    (lambda: pack_groups(-1, 4), "n_sequences: must be a whole number >= 0, got -1"),
    (lambda: injection_stats([[1, 2]], 0, 8), "batch_size: must be a whole number >= 1, got 0"),
    (lambda: injection_stats([[1, 2]], 4, -8), "seq_len: must be a whole number >= 1, got -8"),
    (lambda: inject_batch(torch.zeros(0, 8, dtype=torch.long), [[1]]), "batch: must be [B, L] with B, L >= 1, got shape (0, 8)"),
    (lambda: inject_batch(torch.zeros(2, 0, dtype=torch.long), [[1]]), "batch: must be [B, L] with B, L >= 1, got shape (2, 0)"),
    (lambda: inject_batch(torch.zeros(2, 3, dtype=torch.long), [[1]], overflow="drop"), "overflow must be 'raise' or 'warn'"),
])
def test_sizes_rejected_naming_the_parameter(call, message):
    with pytest.raises(ValueError) as e: call()
    assert message in str(e.value)


def test_schedule_steps_checked():
    from ffka.testing import standin_items
    items = standin_items(4)
    with pytest.raises(ValueError, match="step -1: injection steps must be >= 0"): InjectionSchedule.once(items, -1)
    s = InjectionSchedule.paper(items, {"paraphrase": [0], "duplication": [1], "once": [2], "control": [3]},
                                interval_steps=5, n_injections=3, start=5)
    assert s.shift(-5).steps == [0, 5, 10]
    with pytest.raises(ValueError, match="offset: must be a whole number >= -5, got -6"): s.shift(-6)
    with pytest.raises(ValueError, match="offset: must be a whole number >= -5, got 1.5"): s.shift(1.5)
    with pytest.raises(ValueError, match="n_injections: must be a whole number >= 1, got 0"):
        InjectionSchedule.paper(items, {"once": [0]}, n_injections=0)


def test_save_load_roundtrip_standin(tmp_path):
    from ffka.testing import standin_items
    items = standin_items(8)
    s = InjectionSchedule.paper(items, {"paraphrase": [0, 1], "duplication": [2, 3], "once": [4, 5], "control": [6, 7]})
    assert s.steps == list(range(0, 1000, 100)) and s.n_sequences(0) == 6 and s.n_sequences(100) == 4
    for suf in (".json", ".yaml"):
        assert InjectionSchedule.load(s.save(tmp_path / f"s{suf}")) == s
