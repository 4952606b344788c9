"""Overhead of `ffka.train.run_injection` (injection + loss logging + ProbeLog saving, probes excluded)
against a bare PyTorch loop doing the same updates on the same (already injected) batches.

Runs are interleaved (bare, ffka, bare, ffka, ...) so that load from other processes hits both alike.
Both wall-clock and process CPU time are measured; on a shared machine the CPU-time ratio (with one torch
thread, so no OpenMP spinning) is the stable one. It also checks that both loops give identical losses.

    .venv/bin/python tests/benchmarks/bench_train.py [--steps 40] [--reps 3]
"""
import argparse, tempfile, time
import numpy as np
import torch
import torch.nn.functional as F

from ffka.world import make_world, train_tokenizer
from ffka.model import LM
from ffka.schedule import InjectionSchedule, inject_batch
from ffka.train import world_stream, run_injection, LRSchedule


def bare_loop(lm, batches, sched, clip=1.0):
    "The reference: AdamW, OLMo LR, clipping, mean causal-LM loss; nothing else."
    model = lm.model; model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=sched(0), betas=(0.9, 0.95), weight_decay=0.1, eps=1e-8)
    losses = []
    for s, x in enumerate(batches):
        for g in opt.param_groups: g["lr"] = sched(s)
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), x[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step(); losses.append(float(loss.detach()))
    return np.array(losses)


def main(steps=40, reps=3, batch_size=8, seq_len=256):
    torch.manual_seed(0)
    world = make_world(2000, 16, seed=0)
    tok = train_tokenizer(world, vocab_size=2048)
    items = world.knowledge_items()
    schedule = InjectionSchedule.duplication(items[:batch_size], interval_steps=5, n_injections=steps // 5)
    sched = LRSchedule("cosine", 3e-3, warmup_steps=5, total_steps=10 * steps)
    # the same batches for the bare loop, with the injections already applied
    stream = world_stream(world, tok, seq_len, seed=1)
    batches = []
    for s in range(steps):
        b = stream.batch(batch_size)
        seqs = schedule.tokens_at(s, tok)
        batches.append(inject_batch(b, seqs) if seqs else b)
    new_lm = lambda: LM.tiny(tok, seed=0, device="cpu")  # 2 layers, d_model 128, vocab 2048
    t = {k: [] for k in ("bare_wall", "bare_cpu", "ffka_wall", "ffka_cpu")}
    lm = new_lm(); bare_loop(lm, batches[:2], sched)  # warm-up (kernels, allocator)
    for r in range(reps):
        lm = new_lm(); w0, c0 = time.perf_counter(), time.process_time()
        l_bare = bare_loop(lm, batches, sched)
        t["bare_wall"].append(time.perf_counter() - w0); t["bare_cpu"].append(time.process_time() - c0)
        lm = new_lm()
        with tempfile.TemporaryDirectory() as d:
            w0, c0 = time.perf_counter(), time.process_time()
            pl = run_injection(lm, schedule, world_stream(world, tok, seq_len, seed=1), None, steps, batch_size=batch_size,
                               lr_schedule=sched, out_dir=d, seed=0)
            t["ffka_wall"].append(time.perf_counter() - w0); t["ffka_cpu"].append(time.process_time() - c0)
        assert np.array_equal(pl.loss, l_bare), "run_injection and the bare loop disagree"
        print(f"rep {r}: bare {t['bare_wall'][-1]:.2f} s wall / {t['bare_cpu'][-1]:.2f} s cpu, "
              f"run_injection {t['ffka_wall'][-1]:.2f} s wall / {t['ffka_cpu'][-1]:.2f} s cpu")
    med = {k: float(np.median(v)) for k, v in t.items()}
    print(f"{steps} steps of {batch_size} x {seq_len} tokens, {reps} interleaved reps, {torch.get_num_threads()} torch thread(s); "
          "losses identical in every rep")
    print(f"bare loop: {med['bare_cpu'] / steps * 1e3:.0f} ms/step cpu; run_injection: {med['ffka_cpu'] / steps * 1e3:.0f} ms/step cpu")
    print(f"overhead ratio, cpu time (median run_injection / median bare): {med['ffka_cpu'] / med['bare_cpu']:.3f}")
    print(f"overhead ratio, wall time (median run_injection / median bare): {med['ffka_wall'] / med['bare_wall']:.3f}")
    print(f"timing inside run_injection (last rep, wall): {pl.meta['timing']}")
    return med["ffka_cpu"] / med["bare_cpu"]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40); ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8); ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is not inflated by OpenMP spinning)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    main(a.steps, a.reps, a.batch_size, a.seq_len)
