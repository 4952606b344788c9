"""A toy injection run that `ffka.distributed.launch` can start on every rank (tests/test_distributed.py).

The word-level tokenizer, six items and stream of tests/test_train.py, a 2-layer d=32 OLMo: a whole run is
a second of CPU, so a test's time is mostly the start of its processes."""
import os, random, signal, time
from pathlib import Path

import torch

from ffka.config import TrainConfig
from ffka.data import KnowledgeItem, Probe
from ffka.model import LM
from ffka.probes import ProbeSet
from ffka.schedule import InjectionSchedule
from ffka.streams import PackedTextStream
from ffka.train import run_injection

WORDS = "the a cat dog sat ran on mat far fast".split()


def toy_tokenizer():
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


def toy_config(**changes) -> TrainConfig:
    "12 updates of 8 rows x 8 tokens in 2 micro-batches, 3 injections, probes after every step."
    base = TrainConfig.from_dict({"protocol": dict(steps=12, interval_steps=4, n_injections=3, window=2, cadence="every"),
                                  "optimizer": dict(lr=1e-2), "batch": dict(rows=8, seq_len=8, grad_accum=2)})
    return base.replace(**changes)


def toy_parts(tie: bool = False):
    "(lm, schedule, stream, probes) of the toy run."
    tok = toy_tokenizer()
    items = [_item(i) for i in range(6)]
    split = {"paraphrase": [0, 1], "duplication": [2, 3], "once": [4], "control": [5]}
    probes = ProbeSet.from_items(items, tok)
    probes.meta["scenario"] = [next((s for s, ids in split.items() if i in ids), "control") for i in probes.meta.item_id]
    lm = LM.tiny(tok, seed=0, device="cpu", n_layers=2, d_model=32, n_heads=2, mlp_hidden=64, max_len=64, tie_word_embeddings=tie)
    return lm, InjectionSchedule.paper(items, split, interval_steps=4, n_injections=3), PackedTextStream(toy_docs, tok, seq_len=8), probes


def toy_run(payload: dict) -> dict:
    """Target of `launch`: the toy run with payload `config` (TrainConfig fields) into `out_dir`.

    Test hooks: `kill` = {"rank", "step"} SIGKILLs that rank after that update; `hang` = {"rank", "step"} makes it
    wait forever there; `sleep` seconds after each update; `pid_dir` gets a file per rank holding its pid."""
    import torch.distributed as dist
    torch.set_num_threads(1)
    rank = dist.get_rank() if dist.is_initialized() else 0
    if payload.get("pid_dir"): (Path(payload["pid_dir"]) / f"rank{rank}.pid").write_text(str(os.getpid()))
    lm, sched, stream, probes = toy_parts(payload.get("tie", False))
    kill, hang = payload.get("kill"), payload.get("hang")
    def watch(step, info):
        if kill and rank == kill["rank"] and step == kill["step"]:
            if payload.get("pid_dir"): (Path(payload["pid_dir"]) / f"rank{rank}.killed").write_text(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)
        if hang and rank == hang["rank"] and step == hang["step"]: time.sleep(3600)
        if payload.get("sleep"): time.sleep(payload["sleep"])
    pl = run_injection(lm, sched, stream, probes, toy_config(**payload.get("config", {})), out_dir=payload.get("out_dir"), callback=watch)
    return dict(loss=pl.loss.tolist(), scores=pl.scores.tolist(), steps=pl.steps.tolist(), fingerprint=pl.meta["fingerprint"])
