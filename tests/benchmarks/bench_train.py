"""Two measurements of ffka's training loop on the CPU.

1. Overhead of `ffka.train.run_injection` (injection + loss logging + ProbeLog saving, probes excluded) against a bare
   PyTorch loop doing the same updates on the same (already injected) batches. Runs are interleaved (bare, ffka,
   bare, ffka, ...) so that load from other processes hits both alike. Wall-clock and process CPU time are both
   measured; on a shared machine the CPU-time ratio (one torch thread, no OpenMP spinning) is the stable one. Both
   loops must give identical losses.
2. `--processes N`: one small injection run (world model 2 x 128, 16 rows x 128 tokens, probes every 5 steps) in 1
   process and in N processes (`ffka.distributed.launch`, DDP or FSDP over gloo), interleaved, with the same global
   batch: the wall time of each launch, the time of its loop alone, their ratios, and the largest score difference.

    .venv/bin/python tests/benchmarks/bench_train.py [--steps 40] [--reps 3]
    .venv/bin/python tests/benchmarks/bench_train.py --processes 2 [--strategy ddp] [--steps 30] [--reps 2]
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ffka.config import Batch, LRSchedule, Optimizer, Parallel, Protocol, TrainConfig
from ffka.model import LM
from ffka.schedule import InjectionSchedule, inject_batch
from ffka.streams import world_stream
from ffka.train import Start, run_injection
from ffka.world import make_world, train_tokenizer

HERE = Path(__file__).resolve().parent


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


def overhead(steps=40, reps=3, batch_size=8, seq_len=256):
    torch.manual_seed(0)
    world = make_world(2000, 16, seed=0)
    tok = train_tokenizer(world, vocab_size=2048)
    items = world.knowledge_items()
    n_inj = steps // 5
    schedule = InjectionSchedule.duplication(items[:batch_size], interval_steps=5, n_injections=n_inj)
    sched = LRSchedule("cosine", 3e-3, warmup_steps=5, total_steps=10 * steps)
    cfg = TrainConfig(protocol=Protocol(steps=steps, interval_steps=5, n_injections=n_inj, window=1), optimizer=Optimizer(lr=None),
                      batch=Batch(rows=batch_size, seq_len=seq_len))
    stream = world_stream(world, tok, seq_len, seed=1)       # the same batches for the bare loop, injections applied
    batches = []
    for s in range(steps):
        b = stream.batch(batch_size)
        seqs = schedule.tokens_at(s, tok)
        batches.append(inject_batch(b, seqs) if seqs else b)
    new_lm = lambda: LM.tiny(tok, seed=0, device="cpu")       # 2 layers, d_model 128, vocab 2048
    t = {k: [] for k in ("bare_wall", "bare_cpu", "ffka_wall", "ffka_cpu")}
    lm = new_lm(); bare_loop(lm, batches[:2], sched)          # warm-up (kernels, allocator)
    for r in range(reps):
        lm = new_lm(); w0, c0 = time.perf_counter(), time.process_time()
        l_bare = bare_loop(lm, batches, sched)
        t["bare_wall"].append(time.perf_counter() - w0); t["bare_cpu"].append(time.process_time() - c0)
        lm = new_lm()
        with tempfile.TemporaryDirectory() as d:
            w0, c0 = time.perf_counter(), time.process_time()
            pl = run_injection(lm, schedule, world_stream(world, tok, seq_len, seed=1), None, cfg, start=Start(0, sched), out_dir=d)
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


def small_run(payload: dict) -> dict:
    "Target of `launch` (and of the 1-process run): the small injection run; its loop time and scores."
    torch.set_num_threads(1)
    world = make_world(2000, 16, seed=0)
    tok = train_tokenizer(world, vocab_size=2048)
    items = world.knowledge_items()
    from ffka.probes import ProbeSet
    steps = payload["steps"]
    schedule = InjectionSchedule.duplication(items[:8], interval_steps=10, n_injections=max(1, steps // 10 - 1))
    cfg = TrainConfig(protocol=Protocol(steps=steps, interval_steps=10, n_injections=max(1, steps // 10 - 1), window=2, n_grid=steps // 5),
                      optimizer=Optimizer(lr=1e-3), batch=Batch(rows=16, seq_len=128), parallel=Parallel.from_dict(payload["parallel"]))
    lm = LM.tiny(tok, seed=0, device="cpu")
    t0 = time.perf_counter()
    pl = run_injection(lm, schedule, world_stream(world, tok, 128, seed=1), ProbeSet.from_items(items, tok), cfg)
    return dict(loop_s=time.perf_counter() - t0, scores=pl.scores.tolist(), loss=pl.loss.tolist(), timing=pl.meta["timing"])


def processes(n=2, strategy="ddp", steps=30, reps=2):
    from ffka.distributed import launch
    runs = {1: [], n: []}
    for r in range(reps):
        for p in (1, n):
            t0 = time.perf_counter()
            out = launch("bench_train:small_run", dict(steps=steps, parallel=dict(processes=p, strategy=strategy)), p,
                         env={"PYTHONPATH": str(HERE)})
            runs[p].append(dict(out, wall_s=time.perf_counter() - t0))
            print(f"rep {r}: {p} process(es): launch {runs[p][-1]['wall_s']:.1f} s wall, loop {out['loop_s']:.1f} s "
                  f"(train {out['timing']['train_s']:.1f} s, probes {out['timing']['probe_s']:.1f} s)", flush=True)
    med = lambda p, k: float(np.median([x[k] for x in runs[p]]))
    d = max(float(np.abs(np.asarray(a["scores"]) - np.asarray(b["scores"])).max()) for a, b in zip(runs[1], runs[n]))
    dl = max(float(np.abs(np.asarray(a["loss"]) - np.asarray(b["loss"])).max()) for a, b in zip(runs[1], runs[n]))
    summary = dict(processes=n, strategy=strategy, steps=steps, reps=reps, cores=os.cpu_count(),
                   wall_s={1: med(1, "wall_s"), n: med(n, "wall_s")}, loop_s={1: med(1, "loop_s"), n: med(n, "loop_s")},
                   wall_ratio=med(n, "wall_s") / med(1, "wall_s"), loop_ratio=med(n, "loop_s") / med(1, "loop_s"),
                   max_score_diff=d, max_loss_diff=dl)
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="updates per run (default 40; 30 with --processes)")
    ap.add_argument("--reps", type=int, default=None, help="interleaved repetitions (default 3; 2 with --processes)")
    ap.add_argument("--batch-size", type=int, default=8); ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is not inflated by OpenMP spinning)")
    ap.add_argument("--processes", type=int, default=None, help="compare 1 process with this many (ffka.distributed.launch)")
    ap.add_argument("--strategy", default="ddp", choices=("ddp", "fsdp"), help="with --processes: DDP or FSDP")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.processes: processes(a.processes, a.strategy, a.steps or 30, a.reps or 2)
    else: overhead(a.steps or 40, a.reps or 3, a.batch_size, a.seq_len)
