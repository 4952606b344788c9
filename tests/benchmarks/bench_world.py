"""Benchmark ffka.world: world construction, background generation speed (target >= 1 MB/s),
tokenizer training time and tokenization throughput. Prints figures and ratios; run with
`.venv/bin/python tests/benchmarks/bench_world.py [--mb 20]`."""
import argparse, itertools, tempfile, time
import numpy as np
from ffka.world import make_world, train_tokenizer, probe_boundary_breaks


def timed(f, *a, **k):
    t0 = time.perf_counter(); out = f(*a, **k); return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=20.0, help="MB of background text to generate per profile")
    ap.add_argument("--n-background", type=int, default=2000)
    args = ap.parse_args()

    world, t_make = timed(make_world, args.n_background, 130, seed=0)
    print(f"make_world({args.n_background}, 130): {t_make:.2f} s  {world!r}")

    n_chars = int(args.mb * 1e6)
    for profile in ("zipf", "uniform"):
        w = world if profile == "zipf" else make_world(args.n_background, 0, profile=profile, seed=0)
        txt, dt = timed(w.background_text, n_chars, 0)
        mb = sum(len(t) + 1 for t in txt) / 1e6
        print(f"background generation [{profile}]: {mb:.1f} MB, {len(txt):,} paragraphs in {dt:.2f} s "
              f"= {mb / dt:.1f} MB/s ({mb / dt:.1f}x the 1 MB/s target)")
    ds = world.background_dataset(seed=0)
    rows, dt = timed(lambda: sum(len(r["text"]) + 1 for r in itertools.islice(ds, 20_000)))
    print(f"datasets.IterableDataset: {rows / 1e6:.1f} MB in {dt:.2f} s = {rows / 1e6 / dt:.1f} MB/s")

    for chars in (2_000_000, 5_000_000):
        with tempfile.TemporaryDirectory() as d:
            tok, dt = timed(train_tokenizer, world, vocab_size=2048, n_chars=chars, cache_dir=d)
            _, dl = timed(train_tokenizer, world, vocab_size=2048, n_chars=chars, cache_dir=d)
        print(f"train_tokenizer(vocab 2048, {chars / 1e6:.0f} MB): {dt:.2f} s (generation included); cached load {dl:.3f} s")
    tok = train_tokenizer(world, vocab_size=2048, cache_dir=tempfile.mkdtemp())
    txt = world.background_text(2_000_000, seed=1)
    ids, dt = timed(lambda: tok(txt, add_special_tokens=False)["input_ids"])
    n_tok = sum(map(len, ids))
    print(f"tokenization: {n_tok / dt / 1e6:.2f} M tokens/s; {sum(map(len, txt)) / n_tok:.2f} chars/token")
    items = world.knowledge_items()
    n = lambda texts: np.array([len(x) for x in tok(list(texts), add_special_tokens=False)["input_ids"]])
    for name, texts in [("context", [i.context for i in items]), ("paraphrase", [p for i in items for p in i.paraphrases])]:
        L = n(texts); print(f"{name} tokens: mean {L.mean():.1f}, min {L.min()}, max {L.max()}")
    print(f"probe boundary breaks: {len(probe_boundary_breaks(tok, items))} of {sum(len(i.probes) for i in items)}")


if __name__ == "__main__":
    main()
