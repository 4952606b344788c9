"""Benchmark: probe scoring speed (a script that prints ratios, not a timed unit test).

CPU part (always): all 1,950 real Fictional Knowledge probes, tiny random OLMo (2 layers, d_model 64,
vocab 50,304), fp32. Three scorers, measured in one run, best of `--repeats`:
  naive    one probe at a time, full logits        (ffka.probes.score_probes_naive)
  full     batched, padded, full logits             (score_probeset(method="full"))
  targets  length-sorted, LM head at targets only   (score_probeset, the default)
Issue 7 asks targets >= 5x faster than naive and >= 2x faster than full.

GPU part (only when CUDA is present): an OLMo-1B-shaped random model (hidden 2048, 16 layers, 16 heads,
MLP 8192, vocab 50,304) in bf16 scoring all probes in one pass: full logits, targets-only with sorted
padded batches, and targets-only with packed rows (several probes per row, no padding), several sizes.

    HF_HUB_OFFLINE=1 .venv/bin/python tests/benchmarks/bench_probes.py [--repeats 3] [--naive-sample 0]
"""
import argparse, os, time

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import numpy as np
import torch

from ffka.data import load_fictional_knowledge
from ffka.model import LM
from ffka.probes import ProbeSet, score_probeset, score_probes_naive
from ffka.testing import FICTIONAL_KNOWLEDGE_DIR, olmo_tokenizer, shared_data


def best_of(fn, repeats):
    "Best wall time of `repeats` calls (and the last result)."
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t0)
    return min(ts), out


def cpu_bench(tok, ps, repeats, naive_sample, batch_size):
    lm = LM.tiny(tok, n_layers=2, d_model=64, n_heads=4, mlp_hidden=256, device="cpu", seed=0)
    ins, tgs = ps.meta["input"].tolist(), ps.meta["target"].tolist()
    # naive: the full set by default; a sample (time scaled to the full set) with --naive-sample N
    if naive_sample and naive_sample < len(ps):
        idx = np.random.default_rng(0).choice(len(ps), naive_sample, replace=False)
        t, ref = best_of(lambda: score_probes_naive(lm, tok, [ins[i] for i in idx], [tgs[i] for i in idx]), 1)
        t_naive, ref_idx = t * len(ps) / naive_sample, idx
    else:
        t_naive, ref = best_of(lambda: score_probes_naive(lm, tok, ins, tgs), 1)
        ref_idx = np.arange(len(ps))
    score_probeset(lm, ps, batch_size=batch_size)  # warm-up and build the cached layout
    t_full, full = best_of(lambda: score_probeset(lm, ps, batch_size=batch_size, method="full"), repeats)
    t_fast, fast = best_of(lambda: score_probeset(lm, ps, batch_size=batch_size), repeats)
    score_probeset(lm, ps, batch_size=batch_size, layout="packed")
    t_pack, pack = best_of(lambda: score_probeset(lm, ps, batch_size=batch_size, layout="packed"), repeats)
    print(f"CPU, tiny OLMo (2x64, vocab {lm.model.config.vocab_size}), fp32, {len(ps)} probes, {ps.n_tokens:,} tokens, "
          f"batch {batch_size}, torch threads {torch.get_num_threads()}")
    print(f"  naive per-probe      {t_naive:8.3f} s" + (f"  (from {naive_sample} probes, scaled)" if naive_sample else ""))
    print(f"  batched full logits  {t_full:8.3f} s")
    print(f"  targets-only head    {t_fast:8.3f} s")
    print(f"  targets-only, packed {t_pack:8.3f} s  (max |packed - naive| = {np.abs(pack[ref_idx] - ref).max():.2e})")
    print(f"  speed-up vs naive {t_naive / t_fast:6.1f}x (need >= 5)   vs batched full logits {t_full / t_fast:5.1f}x (need >= 2)")
    print(f"  max |targets - naive| = {np.abs(fast[ref_idx] - ref).max():.2e}   max |full - naive| = {np.abs(full[ref_idx] - ref).max():.2e}")
    lm_bf = LM(lm.model, tok, cpu_bf16=True)
    score_probeset(lm_bf, ps, batch_size=batch_size)
    t_bf, bf = best_of(lambda: score_probeset(lm_bf, ps, batch_size=batch_size), repeats)
    print(f"  targets-only, bf16 autocast {t_bf:6.3f} s ({t_fast / t_bf:.2f}x vs fp32; max |bf16 - fp32| = {np.abs(bf - fast).max():.3f} nats)")


def gpu_bench(tok, ps, repeats, smoke=False):
    "OLMo-1B-shaped random model in bf16 on CUDA; `smoke`: a 2-layer, hidden-128 stand-in on the CPU that runs the same code."
    from transformers import OlmoConfig, OlmoForCausalLM
    dev = torch.device("cpu" if smoke else "cuda")
    shape = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4) if smoke else \
            dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=16)
    cfg = OlmoConfig(vocab_size=50304, **shape, num_key_value_heads=shape["num_attention_heads"], max_position_embeddings=2048,
                     pad_token_id=1, eos_token_id=50279, tie_word_embeddings=True)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(dev): model = OlmoForCausalLM(cfg).to(torch.bfloat16)
    lm = LM(model, tok)
    name = "CPU smoke run of the GPU benchmark" if smoke else torch.cuda.get_device_name()
    print(f"{name}: OLMo-shaped random model in bf16 ({lm.num_parameters() / 1e9:.3f}B params), {len(ps)} probes, {ps.n_tokens:,} tokens")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def timed(**kw):
        def run():
            sync(); out = score_probeset(lm, ps, **kw); sync(); return out
        run()  # warm-up + layout cache
        return best_of(run, repeats)

    ref = None
    runs = [dict(method="full", layout="sorted", batch_size=bs) for bs in (256, 1950)]
    runs += [dict(method="targets", layout="sorted", batch_size=bs) for bs in (256, 512, 1950)]
    runs += [dict(method="targets", layout="packed", row_tokens=rt, batch_size=bs)
             for rt in (512, 1024, 2048) for bs in (512, 1024, 1950)]
    if smoke: runs = runs[::4]
    for kw in runs:
        try: t, out = timed(**kw)
        except torch.cuda.OutOfMemoryError:
            print(f"  {kw}: out of memory"); torch.cuda.empty_cache(); continue
        if ref is None: ref = out
        print(f"  {str(kw):80s} {t:7.3f} s   max |diff| vs first = {np.abs(out - ref).max():.3f} nats (bf16)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-sample", type=int, default=0, help="time the naive loop on N probes and scale (0: all)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-cpu", action="store_true")
    ap.add_argument("--gpu-smoke", action="store_true", help="without CUDA: run the GPU benchmark code on a tiny CPU stand-in")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    fk = shared_data(FICTIONAL_KNOWLEDGE_DIR)
    if fk is None: raise SystemExit(f"the benchmark needs the reference data: ../shared/data/{FICTIONAL_KNOWLEDGE_DIR} is missing")
    tok = olmo_tokenizer()
    ps = ProbeSet.from_items(load_fictional_knowledge(fk), tok)
    if not args.no_cpu: cpu_bench(tok, ps, args.repeats, args.naive_sample, args.batch_size)
    if torch.cuda.is_available(): gpu_bench(tok, ps, args.repeats)
    elif args.gpu_smoke: gpu_bench(tok, ps.subset(np.arange(0, len(ps), 10)), 1, smoke=True)
    else: print("GPU benchmark skipped: no CUDA device (--gpu-smoke runs its code on a small CPU stand-in)")


if __name__ == "__main__":
    main()
