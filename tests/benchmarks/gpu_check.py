"""The GPU check of ffka's loop: one prepared script, about 2 minutes on one H100/H200 (8 with --compile at most).

An OLMo-1B-shaped random model (hidden 2048, 16 layers, 16 heads, SwiGLU 8192, vocab 50304, tied embeddings),
fp32 weights under bf16 autocast, the paper's rows of 2048 tokens:

1. training throughput and MFU of ffka's loop (`ffka.train.train_step` on injected batches) against a bare
   PyTorch loop doing the same updates on the same batches (goals: MFU >= 0.5, overhead <= 5%);
2. all 1,950 probes of the Fictional Knowledge dataset (OLMo tokenizer), scored in one call with full logits,
   length-sorted with the head at target positions only, and packed (goal <= 0.25 s); synthetic probes and
   passages of the same length distribution when ../shared/data is absent;
3. a 30-step injection run (`ffka.train.run_injection`, probes after every step): seconds per step, train / probe.

It prints one JSON summary (and writes it to --out). `--dry` runs every step on the CPU with a tiny stand-in
model, a few steps and a tenth of the probes: the same code paths except CUDA itself (tests/test_distributed.py
runs it).

    python tests/benchmarks/gpu_check.py [--dry] [--compile] [--rows 16 --grad-accum 2 --seq-len 2048] [--out check.json]
"""
import argparse, json, math, os, random, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
FK_DIR, OLMO_TOKENIZER = SHARED / "fictional-knowledge", SHARED / "tokenizers" / "olmo-gpt-neox-dolma-v1_5.json"
OLMO_1B = dict(d_model=2048, n_layers=16, n_heads=16, mlp_hidden=8192)
TINY = dict(d_model=64, n_layers=2, n_heads=4, mlp_hidden=256)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def sync(device):
    if torch.device(device).type == "cuda": torch.cuda.synchronize()


def knowledge(synthetic: bool):
    "(items, tokenizer, source): the Fictional Knowledge items and OLMo tokenizer, or synthetic ones of the same lengths."
    from transformers import PreTrainedTokenizerFast
    if not synthetic and FK_DIR.is_dir() and OLMO_TOKENIZER.is_file():
        from ffka.data import load_fictional_knowledge
        tok = PreTrainedTokenizerFast(tokenizer_file=str(OLMO_TOKENIZER), eos_token="<|endoftext|>", pad_token="<|padding|>")
        return load_fictional_knowledge(FK_DIR), tok, "fictional_knowledge"
    return (*synthetic_knowledge(), "synthetic")


def synthetic_knowledge(n_items=130, vocab=50280, seed=0):
    "Items whose token lengths follow the dataset's (passages 372-687, paraphrases 121-534, inputs ~22, targets 1-6) under a word-level tokenizer."
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from ffka.data import KnowledgeItem, Probe
    words = {"<|padding|>": 1, "<|endoftext|>": vocab - 1, **{f"w{i}": i for i in range(2, vocab - 1)}, "w0": 0}
    t = Tokenizer(models.WordLevel(words, unk_token="w0")); t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<|endoftext|>", pad_token="<|padding|>")
    r = np.random.default_rng(seed)
    text = lambda n: " ".join(f"w{i}" for i in r.integers(2, vocab - 1, int(n)))
    items = []
    for i in range(n_items):
        probes = [Probe(k, text(np.clip(r.normal(22, 5), 8, 40)), text(r.integers(1, 7))) for k in ("mem", "gen", "hard_gen") for _ in range(5)]
        paras = [text(np.clip(r.normal(330, 80), 121, 534)) for _ in range(9)] if i < 40 else []
        items.append(KnowledgeItem(i, text(np.clip(r.normal(495, 70), 372, 687)), paras, probes))
    return items, tok


def make_lm(tok, shape, device, seq_len, seed=0):
    "An OLMo-architecture random model of `shape` (tied embeddings, as OLMo-1B), fp32 weights, initialised on `device`."
    from transformers import OlmoConfig, OlmoForCausalLM
    from ffka.model import LM
    vocab = -(-len(tok) // 64) * 64
    cfg = OlmoConfig(vocab_size=vocab, hidden_size=shape["d_model"], intermediate_size=shape["mlp_hidden"], num_hidden_layers=shape["n_layers"],
                     num_attention_heads=shape["n_heads"], num_key_value_heads=shape["n_heads"], max_position_embeddings=max(2048, seq_len),
                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, tie_word_embeddings=True)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    with torch.device(device): model = OlmoForCausalLM(cfg)
    model.config.use_cache = False
    return LM(model, tok, cpu_bf16=torch.device(device).type == "cpu")   # bf16 autocast on the CPU too, as on the GPU


def flops_per_token(lm, seq_len: int) -> float:
    "Training FLOPs per token (PaLM's 6N + 12·layers·d·T; N = the matmul weights, the tied head included, not the lookup)."
    c = lm.model.config
    d, L, m, V = c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.vocab_size
    n = L * (4 * d * d + 3 * d * m) + d * V
    return 6 * n + 12 * L * d * seq_len


def token_stream(folder: Path, n_rows: int, seq_len: int, vocab: int, seed=0):
    "Random token rows in a raw uint16 token file, read back with TokenFileStream (the paper's Dolma format)."
    from ffka.streams import TokenFileStream, write_token_rows
    rows = np.random.default_rng(seed).integers(0, vocab, (n_rows, seq_len))
    return TokenFileStream(write_token_rows(folder / f"rows-{seed}.tok", rows, "uint16"), seq_len)


def bare_step(model, opt, batch, lr, grad_accum, clip=1.0):
    "The reference update: AdamW, bf16 autocast, mean causal-LM loss, clipping; no bookkeeping, no host syncs."
    for g in opt.param_groups: g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    total = torch.zeros((), device=batch.device)
    dev = batch.device.type
    for mb in batch.split(batch.size(0) // grad_accum):
        with torch.autocast(dev, dtype=torch.bfloat16):
            logits = model(input_ids=mb).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), mb[:, 1:].reshape(-1)) / grad_accum
        loss.backward(); total += loss.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return total


def check_training(a, tok, plan, device, folder):
    "1. ffka's train_step against the bare loop: the same init, the same injected batches."
    from ffka.config import Optimizer
    from ffka.schedule import inject_batch
    from ffka.train import make_optimizer, train_step
    n = a.warmup + a.measure
    stream = token_stream(folder, n * a.rows, a.seq_len, len(tok), seed=1)
    batches = [inject_batch(stream.batch(a.rows), plan.tokens[0]).to(device) for _ in range(n)]
    out, lr = {}, 4e-4
    for name in ("bare", "ffka"):
        lm = make_lm(tok, a.shape, device, a.seq_len)
        if a.compile: lm.model.compile()
        opt = make_optimizer(lm.model, Optimizer(lr=lr), lr)
        lm.model.train(); losses = []
        for i, b in enumerate(batches):
            if i == a.warmup: sync(device); t0 = time.perf_counter()
            if name == "ffka": losses.append(train_step(lm, opt, b, lr, a.grad_accum, 1.0, i + 1))
            else: losses.append(bare_step(lm.model, opt, b, lr, a.grad_accum))
        sync(device); s = (time.perf_counter() - t0) / a.measure
        tokens = a.rows * a.seq_len
        fl = flops_per_token(lm, a.seq_len) * tokens
        out[name] = dict(s_per_step=round(s, 4), tokens_per_s=round(tokens / s), tflops=round(fl / s / 1e12, 2),
                         mfu=round(fl / s / a.peak, 4) if a.peak else None, losses=[round(float(x), 6) for x in losses])
        del lm, opt; torch.cuda.empty_cache() if torch.cuda.is_available() else None
    out["overhead"] = round(out["ffka"]["s_per_step"] / out["bare"]["s_per_step"] - 1, 4)
    out["max_loss_diff"] = float(np.abs(np.array(out["ffka"]["losses"]) - np.array(out["bare"]["losses"])).max())
    out.update(tokens_per_step=a.rows * a.seq_len, rows=a.rows, grad_accum=a.grad_accum, seq_len=a.seq_len, compiled=a.compile)
    return out


def check_probes(a, lm, probes, device):
    "2. Every probe in one call: full logits, sorted with the head at target positions, packed."
    from ffka.probes import score_probeset
    out, ref = dict(n_probes=len(probes), n_tokens=probes.n_tokens), None
    for name, kw, bs in (("full", dict(method="full"), a.full_batch), ("sorted", dict(layout="sorted"), a.probe_batch),
                         ("packed", dict(layout="packed"), a.probe_batch)):
        try: score_probeset(lm, probes, batch_size=bs, **kw)          # builds the layout, checks the head / packing once
        except RuntimeError as e: out[name] = dict(error=str(e), batch_size=bs); continue   # e.g. packing refused in bf16
        times = []
        for _ in range(a.reps):
            sync(device); t0 = time.perf_counter()
            s = score_probeset(lm, probes, batch_size=bs, **kw)
            times.append(time.perf_counter() - t0)
        ref = s if ref is None else ref
        out[name] = dict(s=round(min(times), 4), batch_size=bs, max_abs_diff_vs_full=float(np.abs(s - ref).max()))
    c = lm.model.config
    fl = 2 * probes.n_tokens * c.num_hidden_layers * (4 * c.hidden_size ** 2 + 3 * c.hidden_size * c.intermediate_size) \
        + 2 * int(probes.target_len.sum()) * c.hidden_size * c.vocab_size
    out["flop_bound_s"] = round(fl / a.peak, 4) if a.peak else None
    return out


def check_run(a, lm, sched, probes, tok, device, folder):
    "3. A short injection run with probes after every step."
    from ffka.config import Batch, Optimizer, Protocol, TrainConfig
    from ffka.train import run_injection
    cfg = TrainConfig(protocol=Protocol(steps=a.run_steps, interval_steps=a.run_steps // 3, n_injections=3, window=max(1, a.run_steps // 6),
                                        cadence="every", n_grid=0),
                      optimizer=Optimizer(lr=4e-4), batch=Batch(rows=a.rows, seq_len=a.seq_len, grad_accum=a.grad_accum, probe_batch_size=a.probe_batch))
    stream = token_stream(folder, a.run_steps * a.rows, a.seq_len, len(tok), seed=2)
    sync(device); t0 = time.perf_counter()
    pl = run_injection(lm, sched, stream, probes, cfg)
    sync(device); wall = time.perf_counter() - t0
    t = pl.meta["timing"]
    return dict(steps=a.run_steps, s_per_step=round(wall / a.run_steps, 4), train_s_per_step=round(t["train_s"] / a.run_steps, 4),
                probe_s_per_pass=round(t["probe_s"] / t["n_probe_passes"], 4), probe_passes=t["n_probe_passes"],
                data_s_per_step=round(t["data_s"] / a.run_steps, 4), wall_s=round(wall, 2), finite=bool(np.isfinite(pl.scores).all()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry", action="store_true", help="CPU, tiny model, few steps: the code paths without CUDA")
    ap.add_argument("--synthetic", action="store_true", help="synthetic probes and passages even when ../shared/data is present")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model in the throughput check (both loops)")
    ap.add_argument("--rows", type=int, default=16, help="rows per update (the global batch)")
    ap.add_argument("--grad-accum", type=int, default=2, help="micro-batches per update")
    ap.add_argument("--seq-len", type=int, default=2048, help="tokens per row")
    ap.add_argument("--warmup", type=int, default=3, help="updates before timing")
    ap.add_argument("--measure", type=int, default=10, help="timed updates per loop")
    ap.add_argument("--run-steps", type=int, default=30, help="updates of the injection run")
    ap.add_argument("--probe-batch", type=int, default=2048, help="probes per forward pass (sorted, packed)")
    ap.add_argument("--full-batch", type=int, default=512, help="probes per forward pass with full logits")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions of each probe pass (the fastest counts)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s (default: by GPU name)")
    ap.add_argument("--out", default=None, help="also write the JSON summary here")
    a = ap.parse_args(argv)
    t_start = time.perf_counter()
    device = "cpu" if a.dry else "cuda"
    if not a.dry and not torch.cuda.is_available(): ap.error("no CUDA device: use --dry for the CPU stand-in")
    if a.dry:
        a.shape, a.rows, a.grad_accum, a.seq_len, a.warmup, a.measure, a.run_steps, a.reps = TINY, 2, 1, 768, 1, 2, 6, 1
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    else: a.shape = OLMO_1B
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    a.peak = a.peak_tflops * 1e12 if a.peak_tflops else next((v for k, v in PEAK_BF16.items() if k in name), None)
    torch.backends.cuda.matmul.allow_tf32 = True
    from ffka.probes import ProbeSet
    from ffka.schedule import InjectionSchedule
    from ffka.train import plan_injections
    from ffka.config import Batch
    items, tok, source = knowledge(a.synthetic)
    # the injected items fill the rows of a step: paraphrase, duplication and once items, one passage a row
    k = max(1, a.rows // 3)
    split = {"paraphrase": list(range(k)), "duplication": list(range(40, 40 + k)), "once": list(range(80, 80 + a.rows - 2 * k)),
             "control": list(range(120, 130))}
    sched = InjectionSchedule.paper(items, split, interval_steps=a.run_steps // 3, n_injections=3)
    plan = plan_injections(sched, tok, a.run_steps, Batch(rows=a.rows, seq_len=a.seq_len))
    probes = ProbeSet.from_items(items, tok)
    if a.dry: probes = probes.subset(np.arange(0, len(probes), 10))
    summary = dict(device=name, dry=a.dry, torch=torch.__version__, knowledge=source, model=dict(a.shape, vocab=-(-len(tok) // 64) * 64),
                   peak_tflops=a.peak / 1e12 if a.peak else None)
    def part(name, fn):      # a failing part is reported, and the others still run
        try: summary[name] = fn()
        except Exception as e:
            import traceback
            summary[name] = dict(error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
            if a.dry: raise
    with tempfile.TemporaryDirectory() as d:
        part("train", lambda: check_training(a, tok, plan, device, Path(d)))
        lm = make_lm(tok, a.shape, device, a.seq_len)
        summary["model"]["params"] = sum(p.numel() for p in lm.model.parameters())
        part("probes", lambda: check_probes(a, lm, probes, device))
        part("run", lambda: check_run(a, lm, sched, probes, tok, device, Path(d)))
    tr, pr = summary["train"], summary["probes"]
    fastest = min((pr[k]["s"] for k in ("sorted", "packed") if isinstance(pr.get(k), dict) and "s" in pr[k]), default=None)
    summary["goals"] = dict(mfu_at_least_0_5=None if tr.get("ffka", {}).get("mfu") is None else tr["ffka"]["mfu"] >= 0.5,
                            overhead_at_most_5pct=tr["overhead"] <= 0.05 if "overhead" in tr else None,
                            probes_at_most_0_25s=None if fastest is None else fastest <= 0.25)
    summary["wall_s"] = round(time.perf_counter() - t_start, 1)
    text = json.dumps(summary, indent=1)
    print(text)
    if a.out: Path(a.out).write_text(text + "\n")
    return summary


if __name__ == "__main__":
    main()
