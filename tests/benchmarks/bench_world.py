"""Benchmark ffka.world: world construction, background generation speed (target >= 1 MB/s) against a baseline
revision of the generator measured in the same run (interleaved, best of `--repeat`), exposure counting, tokenizer
training time, tokenization throughput, passage lengths and the knowledge fraction. Prints figures and ratios; run with
`.venv/bin/python tests/benchmarks/bench_world.py [--mb 10] [--baseline 4168f0f]`."""
import argparse, importlib.util, itertools, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import ffka
from ffka.world import make_world, train_tokenizer, probe_boundary_breaks
from ffka.knowledge import shortcut_rates

ROOT = Path(__file__).resolve().parents[2]


def timed(f, *a, **k):
    t0 = time.perf_counter(); out = f(*a, **k); return out, time.perf_counter() - t0


def baseline_module(rev: str):
    "ffka/world.py as of git revision `rev`, imported as a sibling of ffka.world (its relative imports resolve in ffka)."
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:ffka/world.py"], check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "world_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("ffka._world_baseline", path, submodule_search_locations=None)
    mod = importlib.util.module_from_spec(spec); mod.__package__ = "ffka"
    sys.modules[spec.name] = mod; spec.loader.exec_module(mod)
    return mod


def mb_per_s(world, n_chars):
    next(iter(world.background_paragraphs(0)))   # warm up: one-off caches are not generation speed
    txt, dt = timed(world.background_text, n_chars, 0)
    return sum(len(t) + 1 for t in txt) / 1e6 / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=10.0, help="MB of background text to generate per measurement")
    ap.add_argument("--n-background", type=int, default=2000)
    ap.add_argument("--baseline", default="4168f0f", help="git revision of the generator to compare with ('' to skip)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved measurements per generator (best is reported)")
    args = ap.parse_args()

    world, t_make = timed(make_world, args.n_background, 130, seed=0)
    print(f"make_world({args.n_background}, 130): {t_make:.2f} s  {world!r}")
    n_chars = int(args.mb * 1e6)
    gens = {"new": world}
    if args.baseline:
        old = baseline_module(args.baseline)
        gens[f"baseline {args.baseline}"], t_old = timed(old.make_world, args.n_background, 130, seed=0)
        print(f"baseline make_world: {t_old:.2f} s")
    speed = {k: [] for k in gens}
    for _ in range(args.repeat):
        for k, w in gens.items(): speed[k].append(mb_per_s(w, n_chars))
    for k, v in speed.items(): print(f"background generation [{k}, zipf]: best {max(v):.1f} MB/s of {[round(x, 1) for x in v]}")
    if args.baseline:
        print(f"speed ratio new / baseline: {max(speed['new']) / max(speed[f'baseline {args.baseline}']):.2f}")
    u = make_world(args.n_background, 0, profile="uniform", seed=0)
    print(f"background generation [new, uniform]: {mb_per_s(u, n_chars):.1f} MB/s")

    _, dt = timed(world.exposure_events, 100_000)
    _, dt_r = timed(lambda: sum(1 for _ in itertools.islice(world.background_records(), 100_000)))
    print(f"exposure events of 100,000 paragraphs: {dt:.2f} s from the plan, {dt_r:.2f} s as records with text ({dt_r / dt:.0f}x)")
    _, dt_d = timed(world.exposure_events, 100_000, 0, 10, 4, True)
    print(f"the same for the deduplicated stream (top 10, 4 copies): {dt_d:.2f} s")
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
    n = lambda texts: np.array([len(x) + 1 for x in tok(list(texts), add_special_tokens=False)["input_ids"]])
    L = {}
    for name, texts in [("context", [i.context for i in items]), ("paraphrase", [p for i in items for p in i.paraphrases])]:
        L[name] = n(texts); print(f"{name} tokens (+ EOS): mean {L[name].mean():.1f}, min {L[name].min()}, max {L[name].max()}")
    step = 24 * 256
    print(f"knowledge fraction, 6 items/scenario in 24 x 256: first {18 * L['context'].mean() / step:.1%}, "
          f"later {(6 * L['context'].mean() + 6 * L['paraphrase'].mean()) / step:.1%}")
    print(f"probe boundary breaks: {len(probe_boundary_breaks(tok, items))} of {sum(len(i.probes) for i in items)}")
    print("shortcut rates:", {k: round(v, 4) for k, v in shortcut_rates(items, world.specs).items()})


if __name__ == "__main__":
    main()
