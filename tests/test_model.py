"""ffka.model: loading (local dir, offline hub id), tiny seeded OLMo, save/load and exact CPU resume."""
import os, random, time

import numpy as np
import pytest
import torch

from ffka.model import LM, eval_mode, hub_offline, load_training_state, rng_state, set_rng_state
from ffka.testing import olmo_tokenizer_or_standin

D = dict(n_layers=2, d_model=64, n_heads=4, mlp_hidden=128)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tok():
    "The OLMo tokenizer, or (fresh clone, FFKA_NO_SHARED=1) the byte-level stand-in: these tests need no particular vocabulary."
    return olmo_tokenizer_or_standin()


@pytest.fixture(scope="module")
def lm(tok):
    return LM.tiny(tok, **D, seed=0, device="cpu")


def _logits(lm, text="The capital of Veloria is Quenthal"):
    ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False).input_ids])
    with eval_mode(lm.model), torch.inference_mode(): return lm.model(ids).logits


def test_tiny_olmo_vocabulary(olmo_tokenizer):
    assert LM.tiny(olmo_tokenizer, **D, device="cpu").model.config.vocab_size == 50304   # 50,280 rounded up to 64


def test_tiny_shape_and_seed(tok, lm):
    cfg = lm.model.config
    assert (cfg.vocab_size, cfg.num_hidden_layers, cfg.hidden_size) == (-(-len(tok) // 64) * 64, 2, 64)
    assert type(lm.model).__name__ == "OlmoForCausalLM"
    assert lm.pad_token_id == tok.pad_token_id == 1
    assert lm.device.type == "cpu" and lm.dtype == torch.float32
    before = torch.get_rng_state()
    same = LM.tiny(tok, **D, seed=0, device="cpu")
    other = LM.tiny(tok, **D, seed=1, device="cpu")
    assert torch.equal(torch.get_rng_state(), before), "LM.tiny must not move the global RNG"
    for (k, a), b, c in zip(lm.model.state_dict().items(), same.model.state_dict().values(), other.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert not torch.equal(lm.model.model.embed_tokens.weight, other.model.model.embed_tokens.weight)


def test_tiny_pad_falls_back_to_eos(tok):
    from transformers import PreTrainedTokenizerFast
    nopad = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, eos_token="<|endoftext|>")
    assert nopad.pad_token_id is None
    m = LM.tiny(nopad, **D, device="cpu")
    assert m.pad_token_id == nopad.eos_token_id and m.model.config.pad_token_id == nopad.eos_token_id


@pytest.mark.parametrize("name,value", [("n_layers", 0), ("d_model", -64), ("n_heads", 0), ("mlp_hidden", 0),
                                        ("max_len", -1), ("vocab_multiple", 0), ("n_layers", 1.5), ("n_heads", True)])
def test_tiny_rejects_bad_sizes_naming_them(tok, name, value):
    with pytest.raises(ValueError, match=f"^{name}: must be a whole number >= 1, got {value!r}$"):
        LM.tiny(tok, **{**D, name: value}, device="cpu")


def test_tiny_heads_must_divide_d_model(tok):
    with pytest.raises(ValueError, match="d_model=64 is not divisible by n_heads=3"): LM.tiny(tok, **{**D, "n_heads": 3})


def test_autocast_policy(lm):
    with lm.autocast(): assert not torch.is_autocast_enabled("cpu")
    with LM(lm.model, lm.tokenizer, cpu_bf16=True).autocast(): assert torch.is_autocast_enabled("cpu")


def test_eval_mode_restores_flags(lm):
    m = lm.model; m.train(); m.model.layers[0].eval()
    flags = [x.training for x in m.modules()]
    with pytest.raises(RuntimeError):
        with eval_mode(m):
            assert not any(x.training for x in m.modules())
            raise RuntimeError("inside")
    assert [x.training for x in m.modules()] == flags
    m.eval()


def test_from_pretrained_local_dir(tmp_path, lm):
    lm.model.save_pretrained(tmp_path, safe_serialization=True); lm.tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    lm2 = LM.from_pretrained(tmp_path, device="cpu")
    assert torch.equal(_logits(lm2), _logits(lm))
    assert lm2.tokenizer("Veloria").input_ids == lm.tokenizer("Veloria").input_ids
    lm3 = LM.from_pretrained(str(tmp_path), dtype="bf16", device="cpu", tokenizer=lm.tokenizer)
    assert lm3.dtype == torch.bfloat16 and lm3.tokenizer is lm.tokenizer


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"): LM.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="does not exist"): LM.from_pretrained("./not/a/dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"): LM.from_pretrained(tmp_path / "empty")


@pytest.mark.parametrize("name,revision", [("allenai/OLMo-1B-hf", "step20000-tokens84B"),
                                           ("EleutherAI/pythia-160m", "step3000"),
                                           ("ffka-test/never-cached", None)])
def test_offline_hub_id_fails_fast(monkeypatch, tmp_path, name, revision):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache, whatever the machine has
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    assert hub_offline()
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache") as e:
        LM.from_pretrained(name, revision=revision)
    assert time.perf_counter() - t0 < 5
    assert name in str(e.value) and (revision is None or revision in str(e.value))


def test_rng_state_roundtrip_weights_only(tmp_path):
    np.random.randn()  # leave a cached Gaussian in NumPy's legacy state
    s = rng_state()
    a = (torch.rand(4), np.random.randn(3), np.random.rand(2), random.random(), random.gauss(0, 1))
    torch.save(s, tmp_path / "rng.pt")
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    b = (torch.rand(4), np.random.randn(3), np.random.rand(2), random.random(), random.gauss(0, 1))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and a[3:] == b[3:]
    with pytest.raises(ValueError, match="missing field"): set_rng_state({"torch": s["torch"]})


def _opt(model):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 4))


def _train(lm, opt, sched, steps):
    lm.model.train(); losses = []
    for _ in range(steps):
        n = int(np.random.randint(5, 12)) + random.randint(0, 3)
        x = torch.randint(0, min(5000, len(lm.tokenizer)), (2, n))
        noise = torch.randn(()) * 1e-3           # torch RNG feeds the update too
        loss = lm.model(x, labels=x).loss + noise
        loss.backward(); opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("tie", [False, True])
def test_save_load_bit_identical_resume(tmp_path, tok, tie):
    torch.manual_seed(1); np.random.seed(1); random.seed(1)
    a = LM.tiny(tok, **D, seed=5, device="cpu", cpu_bf16=False, tie_word_embeddings=tie)
    opt, sched = _opt(a.model)
    _train(a, opt, sched, 3)
    a.save(tmp_path, training_state={"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": 3,
                                     "extra": {"tokens_seen": 123, "history": [1.5, 2.5]}})
    ref = _train(a, opt, sched, 4)
    # scramble every generator, then resume from disk
    torch.manual_seed(99); np.random.seed(99); random.seed(99)
    b = LM.load(tmp_path, device="cpu"); st = load_training_state(tmp_path)
    assert st["step"] == 3 and st["extra"] == {"tokens_seen": 123, "history": [1.5, 2.5]}
    opt_b, sched_b = _opt(b.model); opt_b.load_state_dict(st["optimizer"]); sched_b.load_state_dict(st["scheduler"])
    set_rng_state(st["rng"])
    got = _train(b, opt_b, sched_b, 4)
    assert got == ref
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert b.model.config.tie_word_embeddings == tie


def test_save_meta_and_stale_state(tmp_path, lm):
    bf = LM(lm.model, lm.tokenizer, cpu_bf16=True)
    bf.save(tmp_path, training_state={"step": 7})
    assert load_training_state(tmp_path)["step"] == 7 and "rng" in load_training_state(tmp_path)
    back = LM.load(tmp_path, device="cpu")
    assert back.cpu_bf16 and back.dtype == torch.float32
    bf.save(tmp_path, training_state={"step": 8}, add_rng=False)
    assert "rng" not in load_training_state(tmp_path)
    bf.save(tmp_path)
    assert load_training_state(tmp_path) is None
    with pytest.raises(FileNotFoundError): LM.load(tmp_path / "nope")


def test_offline_cached_hub_id_loads_revision(monkeypatch, tmp_path, lm):
    "A hub id + revision that is in the cache loads offline (the cache layout written by hand)."
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "models--ffka-test--tiny-olmo"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    lm.model.save_pretrained(snap, safe_serialization=True); lm.tokenizer.save_pretrained(snap)
    (repo / "refs").mkdir(); (repo / "refs" / "step3000").write_text(commit)
    got = LM.from_pretrained("ffka-test/tiny-olmo", revision="step3000", device="cpu", cache_dir=tmp_path)
    assert got.revision == "step3000" and got.name_or_path == "ffka-test/tiny-olmo"
    assert torch.equal(_logits(got), _logits(lm))
    with pytest.raises(FileNotFoundError, match="revision 'step4000'"):
        LM.from_pretrained("ffka-test/tiny-olmo", revision="step4000", cache_dir=tmp_path)
