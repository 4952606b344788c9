"""ffka.pipeline: knowledge, base model, stream and the cached injection run from one RunConfig."""
import json, os
import numpy as np
import pytest

from ffka.profiles import profile
from ffka.core import cache_dir
from ffka import pipeline
from ffka.pipeline import Knowledge, cached, code_hash, injection_run, make_stream, run_key


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    old = os.environ.get("FFKA_CACHE"); os.environ["FFKA_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield cache_dir()
    if old is None: os.environ.pop("FFKA_CACHE")
    else: os.environ["FFKA_CACHE"] = old


def test_run_key_ignores_analysis_and_checkpointing_only():
    c = profile("smoke")
    assert run_key(c, "mid") == run_key(c.replace(iqr_k=1.5, checkpoint={"every": 7}), "mid")
    assert run_key(c, "mid") != run_key(c.replace(seed=1), "mid") != run_key(c, "early")
    assert run_key(c, "mid")["code"] == code_hash()


def test_injection_run_cached_seeded_and_shared_base(cache):
    c = profile("smoke")
    a = injection_run(c, "mid")
    assert injection_run(c, "mid").equal(a)                                    # a cache hit
    b = injection_run(c.replace(seed=1), "mid")
    assert not np.array_equal(a.loss, b.loss)                                  # another seed: another continuation order
    bases = [p for p in (cache / "base").iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    assert len(bases) == 1                                                     # one base model for both seeds
    assert {p.name for p in (bases[0] / "checkpoints").iterdir()} == {"step0000004", "step0000008", "step0000012"}
    assert a.meta["extra"]["stage"] == "mid" and a.meta["seed"] == 0 and b.meta["seed"] == 1
    assert set(a.probes.scenario) == {"paraphrase", "duplication", "once", "control"}


def test_stage_start_continues_the_base_schedule(cache):
    c = profile("smoke")
    lm, start = pipeline.base_model(c, pipeline.knowledge_setup(c), "mid")
    assert start.step == 8 and start.lr_schedule == c.base.lr_schedule and start.optimizer_state["format"] == "ffka.optim-by-name"
    assert start.tokens_seen == 8 * c.base.rows * c.batch.seq_len


def test_interrupted_run_resumes_in_its_partial_folder(cache, monkeypatch):
    c = profile("smoke").replace(seed=5, checkpoint={"every": 4})
    import ffka.train
    real = ffka.train.train_step
    def dying(lm, opt, batch, lr, grad_accum=1, clip=1.0, step=0, *rest, **kw):
        if step == 7: raise KeyboardInterrupt
        return real(lm, opt, batch, lr, grad_accum, clip, step, *rest, **kw)
    monkeypatch.setattr(ffka.train, "train_step", dying)
    with pytest.raises(KeyboardInterrupt): injection_run(c, "mid")
    monkeypatch.setattr(ffka.train, "train_step", real)
    part = next(p for p in (cache / "injection").iterdir() if p.name.endswith(".partial"))
    assert (part / "checkpoints" / "step0000004").is_dir()
    resumed = injection_run(c, "mid")
    fresh = injection_run(c, "mid", cache=False)
    assert resumed.equal(fresh) and not part.exists()


def test_missing_token_file_is_a_clear_error(tmp_path):
    c = profile("paper_7b").replace(data={"source": str(tmp_path / "dolma.npy")})
    with pytest.raises(FileNotFoundError, match="token file not found .*ffka extract-batches"):
        make_stream(c, Knowledge([], {}, None))


def test_hub_model_without_optimizer_state_is_refused_before_training(cache, monkeypatch):
    c = profile("smoke")
    from ffka.train import Start
    monkeypatch.setattr(pipeline, "base_model", lambda cfg, kn, stage, progress=False: (None, Start(0, None, None)))
    with pytest.raises(ValueError, match="has no saved optimizer state"): injection_run(c.replace(seed=9), "mid", cache=False)
    cohorts = [dict(name="c", n_items=1, steps=[0], text="original")]             # cohort runs (e05, e07) continue the same way
    with pytest.raises(ValueError, match="has no saved optimizer state"): pipeline.cohort_run(c.replace(seed=9), "mid", cohorts, cache=False)


def test_cohort_runs_refuse_several_processes():
    cohorts = [dict(name="c", n_items=1, steps=[0], text="original")]
    with pytest.raises(ValueError, match="parallel.processes: cohort runs run in one process, got 2"):
        pipeline.cohort_run(profile("smoke", {"parallel.processes": 2}), "mid", cohorts, cache=False)


def test_each_seed_draws_its_own_items_over_one_background(cache):
    c = profile("smoke")
    a, b = pipeline.knowledge_setup(c), pipeline.knowledge_setup(c.replace(seed=1))
    assert a.world.background_fingerprint() == b.world.background_fingerprint()
    assert a.tokenizer.backend_tokenizer.to_str() == b.tokenizer.backend_tokenizer.to_str()
    assert {it.context for it in a.items}.isdisjoint({it.context for it in b.items})


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_plan_counts_the_rows_of_a_token_file_and_hashes_its_head(tmp_path, dtype):
    import hashlib
    seq = 16
    toks = np.arange(10 * seq, dtype=dtype)
    f = tmp_path / "dolma.npy"; toks.tofile(f)
    c = profile("paper_1b").replace(data={"source": str(f), "dtype": dtype}, batch={"seq_len": seq})
    head = hashlib.sha256(toks[:4 * seq].tobytes()).hexdigest()[:16]
    assert pipeline.run_plan(c, "mid")["data"] == f"{f} (10 rows; sha256 of the first 4 rows {head})"
