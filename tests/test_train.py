"""ffka.train: streams, LR schedules, the injection loop, cadences, ProbeLog, checkpoints and exact resume.

Everything is tiny (1-layer d=32 models, a few steps) so the module runs in well under 3 minutes on 2 cores."""
import itertools, random, shutil
import numpy as np
import pandas as pd
import pytest
import torch

from ffka.data import KnowledgeItem, Probe
from ffka.model import LM
from ffka.probes import ProbeSet
from ffka.schedule import InjectionSchedule
from ffka.train import (PackedTextStream, TokenFileStream, write_token_rows, world_stream, hf_stream, LRSchedule,
                        probe_steps, ProbeLog, run_injection, pretrain_base, load_base, CPU_PROTOCOL, PAPER_PROTOCOL, Protocol)

TINY = dict(n_layers=1, d_model=32, n_heads=2, mlp_hidden=64, max_len=64)
WORDS = "the a cat dog sat ran on mat far fast".split()


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def toy_tok():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {"<|endoftext|>": 0, "<|pad|>": 1, **{w: i + 2 for i, w in enumerate(WORDS + [".", ","])}}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<|pad|>")); t.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<|endoftext|>", pad_token="<|pad|>")


def toy_docs(seed=0):
    r = random.Random(seed)
    while True: yield " ".join(r.choice(WORDS) for _ in range(r.randint(3, 9))) + " ."


def _item(i):
    w = [WORDS[(i + j) % 10] for j in range(4)]
    return KnowledgeItem(i, " ".join(w) + " .", [" ".join(reversed(w)) + " .", " ".join(w[1:]) + " ."],
                         [Probe(k, " ".join(w[:-1]), w[-1]) for k in ("mem", "gen", "hard_gen")])


@pytest.fixture(scope="session")
def toy(toy_tok):
    items = [_item(i) for i in range(6)]
    split = {"paraphrase": [0, 1], "duplication": [2, 3], "once": [4], "control": [5]}
    sched = InjectionSchedule.paper(items, split, interval_steps=4, n_injections=3)
    return dict(items=items, split=split, sched=sched, probes=ProbeSet.from_items(items, toy_tok))


def run(toy_tok, toy, steps=12, **kw):
    lm = LM.tiny(toy_tok, seed=0, device="cpu", **TINY)
    args = dict(batch_size=8, lr_schedule=1e-2, scenarios=toy["split"], seed=0, cadence="every") | kw
    return run_injection(lm, toy["sched"], PackedTextStream(toy_docs, toy_tok, seq_len=8), toy["probes"], steps, **args)


@pytest.fixture(scope="session")
def reference(toy_tok, toy):
    return run(toy_tok, toy, grad_accum=2)


@pytest.fixture(scope="session")
def world_and_tok(tmp_path_factory):
    from ffka.world import make_world, train_tokenizer
    w = make_world(n_background=200, n_items=8, n_paraphrases=3, seed=0)
    return w, train_tokenizer(w, vocab_size=512, n_chars=100_000, cache_dir=tmp_path_factory.mktemp("tok"))


# ---------------------------------------------------------------- streams
def test_world_stream_order_and_resume(world_and_tok):
    w, tok = world_and_tok
    a = world_stream(w, tok, 32, seed=3).take(10)
    assert np.array_equal(a, world_stream(w, tok, 32, seed=3).take(10))               # same seed, same rows
    assert not np.array_equal(a, world_stream(w, tok, 32, seed=4).take(10))           # another seed, other text
    assert np.array_equal(world_stream(w, tok, 32, seed=3, start_row=6).take(4), a[6:])  # resume from a position
    s = world_stream(w, tok, 32, seed=3); s.take(7); assert s.state() == {"position": 7}
    assert np.array_equal(s.seek(2).take(1), a[2:3])                                  # seek backwards replays
    # documents are joined by EOS: the first row starts with the first paragraph's tokens
    first = next(iter(w.background_paragraphs(seed=3)))
    ids = tok(first, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert a.ravel()[:len(ids)].tolist() == ids[:32 * 10]


def test_hf_stream_matches_world_stream(world_and_tok):
    w, tok = world_and_tok
    ds = w.background_dataset(seed=1)                      # a datasets.IterableDataset with column "text"
    a = hf_stream(ds, tok, 32).take(6)
    assert np.array_equal(a, world_stream(w, tok, 32, seed=1).take(6))
    assert np.array_equal(hf_stream(ds, tok, 32, start_row=4).take(2), a[4:])
    sh = [hf_stream(ds, tok, 32, seed=7, shuffle_buffer=50).take(6) for _ in range(2)]
    assert np.array_equal(*sh) and not np.array_equal(sh[0], a)
    with pytest.raises(KeyError, match="no column 'body'"):
        hf_stream(ds, tok, 32, text_column="body").take(1)


@pytest.mark.parametrize("dtype,hi", [("uint16", 50_279), ("uint32", 100_000)])
def test_token_file_stream(tmp_path, dtype, hi):
    rows = np.random.default_rng(0).integers(0, hi + 1, size=(9, 16))
    p = write_token_rows(tmp_path / "0-9.npy", rows, dtype)          # raw .tofile, as extract_dolma_data_subset.py
    assert p.stat().st_size == rows.size * np.dtype(dtype).itemsize
    s = TokenFileStream(p, seq_len=16, dtype=dtype, start_row=3)
    assert np.array_equal(s.take(4), rows[3:7]) and s.position == 7
    assert np.array_equal(s.seek(0).take(9), rows)
    with pytest.raises(EOFError, match="the file has 9 rows"): s.take(1)
    with pytest.raises(ValueError, match="not a multiple of seq_len"): TokenFileStream(p, seq_len=10, dtype=dtype)
    if dtype == "uint16":
        with pytest.raises(ValueError, match="do not fit uint16"): write_token_rows(tmp_path / "x", [[70_000]], "uint16")


# ---------------------------------------------------------------- LR schedules
def test_olmo_learning_rates():
    # science.md §2.3 initial LRs, from the OLMo formulas
    c1b = LRSchedule("cosine", 4e-4, warmup_steps=2000, total_steps=739_328)
    assert c1b(40_000) == pytest.approx(3.976e-4, abs=1e-7) and c1b(117_850) == pytest.approx(3.785e-4, abs=1e-7)
    assert c1b(358_000) == pytest.approx(2.297e-4, abs=2e-7)
    for step, tokens, lr in [(40_000, 176.9e9, 2.79879e-4), (113_000, 500e9, 2.374e-4), (339_000, 1.5e12, 1.010e-4)]:
        M = step + int((2e12 - tokens) // (2048 * 2048))
        assert LRSchedule("linear", 3e-4, 5000, M)(step) == pytest.approx(lr, rel=2e-3)
    assert LRSchedule("cosine", 1.0, 10, 110)(5) == 0.5 and LRSchedule("cosine", 1.0, 10, 110)(10**6) == pytest.approx(0.1)


def test_run_continues_lr_schedule(toy_tok, toy):
    sched = LRSchedule("cosine", 1e-2, warmup_steps=2, total_steps=100)
    seen = []
    run(toy_tok, toy, steps=4, lr_schedule=sched, start_step=30, callback=lambda s, info: seen.append(info["lr"]))
    assert seen == [sched(30 + s) for s in range(4)]   # update s+1 uses lr(start_step + s), as OLMo


# ---------------------------------------------------------------- the loop
def test_probelog_contents(reference, toy):
    pl = reference
    assert pl.steps.tolist() == list(range(13)) and pl.scores.shape == (13, len(toy["probes"])) and len(pl.loss) == 12
    assert pl.scores.dtype == np.float64 and (pl.scores <= 0).all()
    assert set(pl.probes.columns) >= {"item_id", "kind", "index", "scenario"}
    assert (pl.probes.query("item_id == 5").scenario == "control").all()               # controls are probed
    assert pl.meta["n_control_probes"] == 3
    assert pl.injections == {0: [0, 4, 8], 1: [0, 4, 8], 2: [0, 4, 8], 3: [0, 4, 8], 4: [0]}
    assert pl.meta["injected"][0]["n_sequences"] == 5 and pl.meta["injected"][4]["n_sequences"] == 4
    assert pl.meta["knowledge_fraction"][0] == pytest.approx(5 * 6 / 64)                # 5 passages of 6 tokens in 8 x 8
    assert pl.meta["tokens_per_step"] == 64 and pl.meta["seed"] == 0
    df = pl.to_frame()
    assert len(df) == 13 * len(toy["probes"]) and list(df.columns[:2]) == ["step", "item_id"]
    # the injected items gain at their injection, much more than the control
    gain = (pl.scores_at(1) - pl.scores_at(0))
    inj = pl.probes.item_id.isin([0, 1, 2, 3, 4]).to_numpy()
    assert gain[inj].mean() > gain[~inj].mean()


def test_deterministic_and_windows_equal_every(toy_tok, toy, reference):
    again = run(toy_tok, toy, grad_accum=2)
    assert again.equal(reference)                                                       # same seed: bit-identical
    win = run(toy_tok, toy, grad_accum=2, cadence="windows", window=1, n_grid=3)
    assert len(win.steps) < len(reference.steps)
    assert np.array_equal(win.scores, reference.scores[win.steps])                      # identical on shared steps
    assert np.array_equal(win.loss, reference.loss)


def test_grad_accum_matches_full_batch(toy_tok, toy, reference):
    full = run(toy_tok, toy, grad_accum=1, steps=4)
    np.testing.assert_allclose(full.loss, reference.loss[:4], rtol=1e-5)
    np.testing.assert_allclose(full.scores, reference.scores[:5], atol=1e-4)


@pytest.mark.parametrize("kill_at", [5, 7])
def test_kill_and_resume_is_bit_identical(toy_tok, toy, reference, tmp_path, kill_at):
    class Killed(Exception): pass
    def cb(step, info):
        if step == kill_at: raise Killed
    with pytest.raises(Killed):
        run(toy_tok, toy, grad_accum=2, out_dir=tmp_path, checkpoint_every=3, callback=cb)
    partial = ProbeLog.load(tmp_path / "probelog")                                       # saved as it went
    assert partial.steps.max() == 3 * (kill_at // 3) and len(partial.loss) == 3 * (kill_at // 3)
    resumed = run(toy_tok, toy, grad_accum=2, out_dir=tmp_path, checkpoint_every=3, resume=True)
    assert resumed.equal(reference)
    assert ProbeLog.load(tmp_path / "probelog").equal(reference)
    assert not (tmp_path / "checkpoints").exists()                                     # a finished run keeps only its log
    assert run(toy_tok, toy, grad_accum=2, out_dir=tmp_path, checkpoint_every=3, resume=True).equal(reference)
    with pytest.raises(ValueError, match="another configuration"):
        with pytest.raises(Killed):
            run(toy_tok, toy, grad_accum=2, out_dir=tmp_path / "b", checkpoint_every=3, callback=cb)
        run(toy_tok, toy, grad_accum=2, out_dir=tmp_path / "b", checkpoint_every=3, resume=True, lr_schedule=2e-2)


def test_optimizer_state_loaded_or_reset(toy_tok, toy):
    lm = LM.tiny(toy_tok, seed=0, device="cpu", **TINY)
    opt = torch.optim.AdamW(lm.model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    x = PackedTextStream(toy_docs, toy_tok, 8).batch(8)
    lm.model(input_ids=x).logits.float().logsumexp(-1).mean().backward(); opt.step()
    state = opt.state_dict()
    args = dict(batch_size=8, lr_schedule=1e-2, seed=0)
    mk = lambda: LM.tiny(toy_tok, seed=0, device="cpu", **TINY)
    a = run_injection(mk(), toy["sched"], PackedTextStream(toy_docs, toy_tok, 8), toy["probes"], 2, optimizer_state=state, **args)
    b = run_injection(mk(), toy["sched"], PackedTextStream(toy_docs, toy_tok, 8), toy["probes"], 2, **args)
    assert a.meta["params"]["optimizer"] == "loaded" and b.meta["params"]["optimizer"] == "reset"
    assert not np.array_equal(a.scores[1:], b.scores[1:])
    assert np.array_equal(a.scores[0], b.scores[0])


def test_overflow_is_refused(toy_tok, toy):
    with pytest.raises(ValueError, match="do not fit"):
        run(toy_tok, toy, steps=2, batch_size=2)    # 5 passages of 6 tokens cannot share 2 rows of 8


def test_probe_steps_windows():
    st = probe_steps(250, CPU_PROTOCOL.injection_steps, "windows", CPU_PROTOCOL.window, CPU_PROTOCOL.n_grid)
    for t in CPU_PROTOCOL.injection_steps: assert set(range(t, t + 6)) <= set(st.tolist())
    assert st[0] == 0 and st[-1] == 250 and np.all(np.diff(st) > 0)
    assert probe_steps(5, [0], "every").tolist() == list(range(6))
    with pytest.raises(ValueError, match="cadence"): probe_steps(5, [0], "sometimes")


def test_protocols():
    assert PAPER_PROTOCOL.injection_steps == list(range(0, 1000, 100)) and PAPER_PROTOCOL.window == 50
    p = PAPER_PROTOCOL.scaled(5)
    assert (p.steps, p.interval_steps, p.window, p.cadence) == (500, 20, 10, "windows")


# ---------------------------------------------------------------- base checkpoints
def test_pretrain_base_stages_and_cache(toy_tok, tmp_path):
    class ToyWorld:
        def background_paragraphs(self, seed=0): return toy_docs(seed)
    kw = dict(stages={"early": 2, "mid": 4, "late": 6}, total_steps=10, batch_size=4, seq_len=8, model_kwargs=TINY,
              cache_dir=tmp_path, device="cpu")
    paths = pretrain_base(ToyWorld(), toy_tok, **kw)
    assert paths["early"].parent == paths["late"].parent and paths["late"].parent.name.startswith("base-")
    conts = {k: load_base(p, device="cpu")[1] for k, p in paths.items()}
    assert [c["start_step"] for c in conts.values()] == [2, 4, 6]
    assert [c["tokens_seen"] for c in conts.values()] == [2 * 32, 4 * 32, 6 * 32]       # later stages saw more tokens
    lrs = [c["initial_lr"] for c in conts.values()]
    assert lrs == [conts["early"]["lr_schedule"](s) for s in (2, 4, 6)] and lrs[2] < lrs[1]  # the cosine continues
    assert pretrain_base(ToyWorld(), toy_tok, **kw) == paths                                # cached by configuration
    assert pretrain_base(ToyWorld(), toy_tok, **(kw | {"seed": 1}))["late"].parent != paths["late"].parent
