"""ffka.olmo / ffka.olmo_data against OLMo's own code (ai2-olmo, in a venv of its own), plus pure tests.

ai2-olmo pins numpy < 2, so it gets its own virtual environment, built on first use under
`$FFKA_CACHE` (default `~/.cache/ffka`) and reused: torch 2.13.0 first (the CPU wheel; a CUDA build is refused),
then ai2-olmo and what `olmo.model/optim/checkpoint/data/train` import. `tests/olmo_reference.py` runs there and
writes checkpoints and reference numbers with OLMo's code; the tests read them with ffka in this venv.
Without PyPI the OLMo tests skip with the reason; under CI=true they fail instead.
"""
import fcntl, hashlib, json, os, shutil, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ffka import olmo, olmo_data
from ffka.olmo import (PAPER_CHECKPOINTS, convert_optimizer_state, convert_state_dict, extract_batches, extract_from_olmo_config,
                       from_olmo_checkpoint, list_revisions, olmo_lr, olmo_lr_schedule, olmo_max_steps, olmo_to_hf_config)
try: from ffka.config import LRSchedule
except ImportError: from ffka.train import LRSchedule

ROOT = Path(__file__).resolve().parents[1]
TORCH_REQ = "torch==2.13.0"
OLMO_REQS = ["ai2-olmo==0.6.0", "numpy<2", "datasets<4", "pyarrow<20", "pandas<2.3", "wandb", "torchmetrics", "scikit-learn"]
VARIANTS, LAYOUTS = ("untied", "tied"), ("ddp", "fsdp-ids", "fsdp-names", "safetensors")
MEASURED = {}


def _venv_dir() -> Path:
    key = "\n".join([sys.version.split()[0], TORCH_REQ, *OLMO_REQS])
    base = Path(os.environ.get("FFKA_CACHE") or Path.home() / ".cache" / "ffka")
    return base / f"ai2-olmo-venv-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _unavailable(msg: str):
    if os.environ.get("CI", "").lower() == "true": pytest.fail(msg)
    pytest.skip(msg)


def _build_venv(venv: Path) -> float:
    "Create the ai2-olmo venv at `venv` (atomically); returns the seconds it took."
    t0, tmp = time.perf_counter(), venv.with_name(venv.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    py = tmp / "bin" / "python"
    cons = tmp / "constraints.txt"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True, text=True)
        cons.write_text(TORCH_REQ + "\n")
        for args in ([TORCH_REQ], ["-c", str(cons), TORCH_REQ, *OLMO_REQS]):
            subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                           check=True, capture_output=True, text=True, timeout=900)
        r = subprocess.run([str(py), "-c", "import torch, numpy, olmo.model, olmo.optim, olmo.checkpoint, olmo.data, olmo.train; "
                            "print(torch.version.cuda, numpy.__version__)"], check=True, capture_output=True, text=True)
        if r.stdout.split()[0] != "None": raise RuntimeError(f"the ai2-olmo venv got a CUDA torch ({r.stdout.strip()}): refusing it")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = (getattr(e, "stderr", "") or "")[-1500:]
        _unavailable(f"cannot build the ai2-olmo venv (needs PyPI): {e}\n{tail}")
    seconds = time.perf_counter() - t0
    (tmp / ".complete").write_text(json.dumps({"build_seconds": round(seconds, 1), "requirements": [TORCH_REQ, *OLMO_REQS]}))
    os.replace(tmp, venv)
    return seconds


@pytest.fixture(scope="session")
def olmo_python() -> Path:
    venv = _venv_dir(); venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:      # one builder at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            _build_venv(venv)
    MEASURED["venv_build_seconds"] = json.loads((venv / ".complete").read_text())["build_seconds"]
    return venv / "bin" / "python"


def _reference(olmo_python: Path, what: str, out: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    r = subprocess.run([str(olmo_python), str(ROOT / "tests" / "olmo_reference.py"), what, str(out)], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode: pytest.fail(f"tests/olmo_reference.py {what} failed:\n{r.stderr[-3000:]}")
    return out


@pytest.fixture(scope="session")
def olmo_checkpoints(olmo_python, tmp_path_factory) -> Path:
    return _reference(olmo_python, "checkpoints", tmp_path_factory.mktemp("olmo") / "ck")


@pytest.fixture(scope="session")
def olmo_memmap(olmo_python, tmp_path_factory) -> Path:
    return _reference(olmo_python, "memmap", tmp_path_factory.mktemp("olmo") / "mm")


def toy_tokenizer(n=100):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    t = Tokenizer(models.WordLevel({f"w{i}": i for i in range(n)}, unk_token="w0")); t.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token=f"w{n - 1}", pad_token="w1")


# ---------------------------------------------------------------- against OLMo's code

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_checkpoint_matches_olmo(olmo_checkpoints, olmo_python, variant, layout, torch_one_thread):
    summary = json.loads((olmo_checkpoints / "summary.json").read_text())[variant]
    ref = torch.load(olmo_checkpoints / f"{variant}-reference.pt", weights_only=True)
    ck = from_olmo_checkpoint(olmo_checkpoints / f"{variant}-{layout}", device="cpu", tokenizer=toy_tokenizer())
    assert (ck.step, ck.tokens_seen) == (3, 3 * 4 * 16)
    model = ck.lm.model
    assert ck.lm.dtype == torch.float32
    with torch.no_grad():
        model.eval(); logit_diff = (model(ref["x_eval"]).logits - ref["logits"]).abs().max().item(); model.train()
    assert logit_diff <= 1e-5, logit_diff

    # the schedule: LRSchedule(s) == OLMo's get_lr(s + 1) from the end of the warmup on
    sched = LRSchedule(**ck.lr_schedule)
    assert ck.lr_schedule["total_steps"] == summary["max_steps"] and ck.lr_schedule["step_offset"] == 1
    for s, lr in summary["lr_table"]:
        if s + 1 >= ck.lr_schedule["warmup_steps"]: assert sched(s) == pytest.approx(lr, rel=1e-12, abs=1e-15), s
        assert olmo_lr(ck.config, s + 1, summary["max_steps"]) == pytest.approx(lr, rel=1e-12, abs=1e-15), s

    # OLMo's param groups and hyper-parameters
    opt = ck.make_optimizer()
    pm = olmo._param_map(ck.config)
    clean = olmo._clean_names([n for g in summary["param_groups"] for n in g])    # DDP's module., block groups
    olmo_groups = [{clean[n] for n in g} for g in summary["param_groups"]]
    names = {id(p): n for n, p in model.named_parameters()}
    assert [{pm[names[id(p)]][0] for p in g["params"]} for g in opt.param_groups] == olmo_groups
    assert [g["weight_decay"] for g in opt.param_groups] == ([0.1, 0.0] if variant == "untied" else [0.1])
    assert (opt.defaults["eps"], opt.defaults["betas"]) == (1e-5, (0.9, 0.95))

    # one more step from the loaded moments = OLMo's next step. (1) With OLMo's own clipped gradients, split like the
    # weights, the AdamW step alone is compared: moments, step counts, groups, betas/eps, weight decay and LR.
    lr = sched(ck.step)
    assert lr == pytest.approx(summary["lr"], rel=1e-12)
    after = convert_state_dict(ref["params_after"], ck.config)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    state0 = {id(p): {k: v.clone() for k, v in s.items()} for p, s in opt.state.items()}
    olmo_grads = convert_state_dict(ref["grads"], ck.config)
    for g in opt.param_groups: g["lr"] = lr
    for n, p in model.named_parameters(): p.grad = olmo_grads[n].clone()
    opt.step()
    got = dict(model.named_parameters())
    param_diff = max((got[n] - after[n]).abs().max().item() for n in got)
    assert param_diff <= 1e-7, param_diff
    assert all(float(opt.state[p]["step"]) == ref["step_after"] for p in model.parameters())

    # (2) The whole step with ffka's own backward and clipping: fp32 summation order differs (fused vs split
    # projections), and Adam magnifies that on elements whose gradient is ~1e-6 (its denominator is then ~eps).
    with torch.no_grad():
        for n, p in model.named_parameters(): p.copy_(start[n])
    for p in model.parameters(): opt.state[p] = {k: v.clone() for k, v in state0[id(p)].items()}
    opt.zero_grad(set_to_none=True)
    x = ref["x_train"]
    logits = model(x).logits
    F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1)).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), ck.config["max_grad_norm"])
    grad_diff = max((p.grad - olmo_grads[n]).abs().max().item() for n, p in model.named_parameters())
    assert grad_diff <= 1e-6, grad_diff
    opt.step()
    e2e_diff = max((p - after[n]).abs().max().item() for n, p in model.named_parameters())
    assert e2e_diff <= 2e-6, e2e_diff
    # (3) ffka's own optimizer (ffka.train.make_optimizer, as the paper runs use it) continuing ck.optimizer_state() by name,
    # its groups rebuilt from an ffka Optimizer configuration set to OLMo's: the same next step as OLMo's.
    from ffka.config import Optimizer
    from ffka.train import make_optimizer as ffka_optimizer
    with torch.no_grad():
        for n, p in model.named_parameters(): p.copy_(start[n])
    oc = {**olmo.OLMO_OPTIMIZER_DEFAULTS, **ck.config["optimizer"]}
    mine = ffka_optimizer(model, Optimizer(betas=tuple(oc["betas"]), eps=float(oc["eps"]), weight_decay=float(oc["weight_decay"]),
                                           decay_embeddings=bool(oc["decay_embeddings"]), decay_norms=bool(oc["decay_norm_and_bias"])),
                          lr, ck.optimizer_state())
    for n, p in model.named_parameters(): p.grad = olmo_grads[n].clone()
    mine.step()
    ffka_diff = max((p - after[n]).abs().max().item() for n, p in model.named_parameters())
    assert ffka_diff <= 1e-7, ffka_diff
    print(f"\n{variant}-{layout}: ffka.train.make_optimizer continuing optim.pt by name: max |param diff| {ffka_diff:.1e}")
    print(f"\n{variant}-{layout}: ai2-olmo venv built in {MEASURED['venv_build_seconds']} s; max |logit diff| {logit_diff:.1e}; "
          f"max |param diff| after one step with OLMo's gradients {param_diff:.1e}, with ffka's backward {e2e_diff:.1e} (|grad diff| {grad_diff:.1e})")


@pytest.mark.parametrize("variant", VARIANTS)
def test_hf_olmo_layout_matches_olmo(olmo_checkpoints, variant, torch_one_thread):
    "The hub revisions' layout, written by OLMo's hf_olmo converter: same logits; weights only, so no optimizer state."
    ref = torch.load(olmo_checkpoints / f"{variant}-reference.pt", weights_only=True)
    d = olmo_checkpoints / f"{variant}-hf_olmo"
    assert json.loads((d / "config.json").read_text())["d_model"] == 32 and not (d / "optim.pt").exists()
    ck = from_olmo_checkpoint(d, device="cpu", tokenizer=toy_tokenizer())
    assert (ck.step, ck.tokens_seen, ck.lr_schedule, ck.optim_path) == (None, None, None, None)
    with torch.no_grad():
        ck.lm.model.eval(); assert (ck.lm.model(ref["x_eval"]).logits - ref["logits"]).abs().max().item() <= 1e-5
    with pytest.raises(ValueError, match="has no optimizer state"): ck.make_optimizer()
    import yaml
    train = {k: v for k, v in yaml.safe_load((olmo_checkpoints / f"{variant}-ddp" / "config.yaml").read_text()).items() if k != "model"}
    ck = from_olmo_checkpoint(d, revision="step3-tokens0B", device="cpu", tokenizer=toy_tokenizer(), train_config=train)
    opt = ck.make_optimizer(fresh=True)
    assert (ck.step, ck.tokens_seen, len(opt.state), opt.defaults["eps"]) == (3, 0, 0, 1e-5)
    assert ck.lr_schedule == olmo_lr_schedule({**train, "model": ck.config["model"]}, 3, 0) != None   # tokens from the revision name


def test_extract_batches_matches_olmo(olmo_memmap, tmp_path, monkeypatch):
    m = json.loads((olmo_memmap / "memmap.json").read_text())
    expected = np.load(olmo_memmap / "expected.npy")
    args = (m["paths"], m["global_indices"], m["seq_len"], m["batch_size"], m["start_batch"], m["n_batches"])
    assert any(Path(p).stat().st_size // 2 % m["seq_len"] for p in m["paths"])          # lengths not multiples of seq_len
    full = extract_batches(*args, tmp_path / "full.u16", progress=True)
    rows = np.fromfile(full, dtype=np.uint16).reshape(-1, m["seq_len"])
    np.testing.assert_array_equal(rows, expected)                                       # OLMo's instances, in OLMo's order
    digest = hashlib.sha256(full.read_bytes()).hexdigest()
    assert (tmp_path / "full.u16.sha256").read_text().split()[0] == digest

    calls, real = [0], olmo_data._read_instances
    def flaky(*a, **k):
        calls[0] += 1
        if calls[0] == 3: raise KeyboardInterrupt("interrupted")
        return real(*a, **k)
    monkeypatch.setattr(olmo_data, "_read_instances", flaky)
    with pytest.raises(KeyboardInterrupt): extract_batches(*args, tmp_path / "part.u16")
    assert (tmp_path / "part.u16").stat().st_size == 2 * m["batch_size"] * m["seq_len"] * 2
    monkeypatch.setattr(olmo_data, "_read_instances", real)
    part = extract_batches(*args, tmp_path / "part.u16")
    assert part.read_bytes() == full.read_bytes()
    assert (tmp_path / "part.u16.sha256").read_text().split()[0] == digest


# ---------------------------------------------------------------- pure tests (this venv only)

def tiny(**kw):
    m = dict(d_model=8, n_heads=2, n_kv_heads=1, n_layers=1, mlp_ratio=2, rope=True, include_bias=False, layer_norm_with_affine=False,
             attention_dropout=0.0, residual_dropout=0.0, embedding_dropout=0.0, max_sequence_length=4, vocab_size=10, embedding_size=16,
             weight_tying=False, eos_token_id=9, pad_token_id=1)
    return {"model": {**m, **kw}}


def test_fused_split_by_hand():
    "att_proj rows: q (d), k (kv), v (kv); ff_proj rows: the first half is up (x), the second the gate."
    cfg, d, kv, hid = tiny(), 8, 4, 8
    rows = lambda n, first: torch.arange(first, first + n, dtype=torch.float32)[:, None].expand(n, d).clone()
    sd = {"transformer.wte.weight": torch.zeros(16, d), "transformer.ff_out.weight": torch.ones(16, d),
          "transformer.blocks.0.att_proj.weight": rows(d + 2 * kv, 0), "transformer.blocks.0.attn_out.weight": torch.eye(d),
          "transformer.blocks.0.ff_proj.weight": rows(2 * hid, 100), "transformer.blocks.0.ff_out.weight": torch.ones(d, hid)}
    hf = convert_state_dict(sd, cfg)
    a = "model.layers.0."
    assert hf[a + "self_attn.q_proj.weight"][:, 0].tolist() == list(range(0, 8))
    assert hf[a + "self_attn.k_proj.weight"][:, 0].tolist() == list(range(8, 12))
    assert hf[a + "self_attn.v_proj.weight"][:, 0].tolist() == list(range(12, 16))
    assert hf[a + "mlp.up_proj.weight"][:, 0].tolist() == list(range(100, 108))
    assert hf[a + "mlp.gate_proj.weight"][:, 0].tolist() == list(range(108, 116))
    assert torch.equal(hf[a + "self_attn.o_proj.weight"], torch.eye(d)) and torch.equal(hf["lm_head.weight"], torch.ones(16, d))
    assert hf[a + "self_attn.q_proj.weight"].untyped_storage().data_ptr() != sd["transformer.blocks.0.att_proj.weight"].untyped_storage().data_ptr()
    assert hf[a + "mlp.up_proj.weight"].dtype == torch.float32 and convert_state_dict(sd, cfg, dtype="bf16")[a + "mlp.up_proj.weight"].dtype == torch.bfloat16
    with pytest.raises(ValueError, match="att_proj.weight has 15 rows"):
        convert_state_dict({**sd, "transformer.blocks.0.att_proj.weight": rows(15, 0)}, cfg)
    with pytest.raises(ValueError, match="transformer.ff_out.weight"):   # a tied config has no head
        convert_state_dict(sd, tiny(weight_tying=True))


def test_config_mapping():
    c = olmo_to_hf_config(tiny(clip_qkv=8, rope_theta=500000, mlp_hidden_size=12))
    assert (c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.vocab_size) == (8, 6, 2, 1, 16)
    assert (c.clip_qkv, c.rope_parameters["rope_theta"], c.max_position_embeddings, c.tie_word_embeddings) == (8.0, 500000.0, 4, False)
    assert olmo_to_hf_config(tiny(n_kv_heads=None, multi_query_attention=True)).num_key_value_heads == 1
    for field, value, msg in [("layer_norm_type", "rms", "RMSNorm"), ("alibi", True, "ALiBi"), ("scale_logits", True, "scaled"),
                              ("attention_layer_norm", True, "QK layer norms"), ("layer_norm_eps", 1e-6, "epsilon"),
                              ("block_type", "llama", "block types"), ("embedding_dropout", 0.1, "embedding dropout")]:
        with pytest.raises(ValueError, match=f"model.{field}=.*{msg}"): olmo_to_hf_config(tiny(**{field: value}))
    with pytest.raises(ValueError, match="contradicts"): olmo_to_hf_config(tiny(n_kv_heads=2, multi_query_attention=True))


def test_optimizer_state_id_and_name_keyed():
    cfg = tiny()
    shapes = {"transformer.wte.weight": (16, 8), "transformer.ff_out.weight": (16, 8), "transformer.blocks.0.att_proj.weight": (16, 8),
              "transformer.blocks.0.attn_out.weight": (8, 8), "transformer.blocks.0.ff_proj.weight": (16, 8), "transformer.blocks.0.ff_out.weight": (8, 8)}
    g = torch.Generator().manual_seed(0)
    st = {n: {"step": torch.tensor(12.0), "exp_avg": torch.randn(s, generator=g), "exp_avg_sq": torch.rand(s, generator=g)} for n, s in shapes.items()}
    names = sorted(shapes)
    decay, no_decay = [n for n in names if n != "transformer.wte.weight"], ["transformer.wte.weight"]
    by_id = {"state": {names.index(n): st[n] for n in names},
             "param_groups": [{"params": [names.index(n) for n in grp], "param_names": ["_fsdp_wrapped_module." + n for n in grp], "betas": (0.9, 0.95)}
                              for grp in (decay, no_decay)]}
    by_name = {"state": {"_fsdp_wrapped_module." + n: s for n, s in st.items()},
               "param_groups": [{"params": ["_fsdp_wrapped_module." + n for n in grp], "param_names": ["_fsdp_wrapped_module." + n for n in grp]}
                                for grp in (decay, no_decay)]}
    a, b = convert_optimizer_state(by_id, cfg), convert_optimizer_state(by_name, cfg)
    assert a["state"].keys() == b["state"].keys() == olmo._param_map(cfg).keys()
    for n, (src, lo, hi) in olmo._param_map(cfg).items():
        for k in ("exp_avg", "exp_avg_sq"):
            want = st[src][k] if hi is None else st[src][k][lo:hi]
            assert torch.equal(a["state"][n][k], want) and torch.equal(b["state"][n][k], want)
        assert float(a["state"][n]["step"]) == 12.0
    assert a["param_groups"][0] == {"betas": (0.9, 0.95)}
    with pytest.raises(ValueError, match="no entry for OLMo parameter"):
        convert_optimizer_state({"state": {k: v for k, v in st.items() if "wte" not in k}, "param_groups": [{"params": decay}]}, cfg)


OLMO_7B = {"model": {"max_sequence_length": 2048}, "optimizer": {"name": "adamw", "learning_rate": 3e-4}, "global_train_batch_size": 2048,
           "scheduler": {"name": "linear_with_warmup", "t_warmup": 5000, "alpha_f": 0.1}, "max_duration": "2e12T"}
OLMO_1B = {"model": {"max_sequence_length": 2048}, "optimizer": {"name": "adamw", "learning_rate": 4e-4}, "global_train_batch_size": 2048,
           "scheduler": {"name": "cosine_with_warmup", "t_warmup": 2000, "alpha_f": 0.1}, "max_duration": 739_328}


@pytest.mark.parametrize("cfg,step,tokens,paper,rel", [
    (OLMO_7B, 40000, 177e9, 2.7987859018117786e-4, 2e-5),   # the literal of the deleted OLMo-7B-bsize-40000.yaml (tokens from the revision name)
    (OLMO_7B, 113000, 500e9, 2.374e-4, 5e-4), (OLMO_7B, 339000, 1500e9, 1.010e-4, 5e-4),
    (OLMO_1B, 40000, None, 3.976e-4, 5e-4), (OLMO_1B, 117850, None, 3.785e-4, 5e-4), (OLMO_1B, 358000, None, 2.297e-4, 5e-4)])
def test_lr_schedule_vs_science(cfg, step, tokens, paper, rel):
    d = olmo_lr_schedule(cfg, step, tokens)
    assert set(d) == {"kind", "lr", "warmup_steps", "total_steps", "alpha_f", "step_offset"}
    lr = LRSchedule(**d)(step)
    assert lr == pytest.approx(paper, rel=rel)
    M = olmo_max_steps(cfg, step, tokens)
    assert lr == pytest.approx(olmo_lr(cfg, step + 1, M), rel=1e-13)
    # the hand formula of science.md §2.3 (with OLMo's ceil for M)
    if cfg is OLMO_7B:
        assert M == step + -(-int(2e12 - tokens) // (2048 * 2048))
        assert olmo_lr(cfg, step + 1, M) == pytest.approx(3e-4 - 0.9 * 3e-4 * (step + 1 - 5000) / (M - 5000), rel=1e-13)
    else:
        assert olmo_lr(cfg, step + 1, M) == pytest.approx(4e-5 + 3.6e-4 * (1 + np.cos(np.pi * (step + 1 - 2000) / (739328 - 2000))) / 2, rel=1e-13)


def test_lr_schedule_edges():
    with pytest.raises(ValueError, match="tokens_seen"): olmo_lr_schedule(OLMO_7B, 40000)
    with pytest.raises(ValueError, match="units"): olmo_lr_schedule({**OLMO_1B, "scheduler": {"units": "tokens"}}, 10)
    with pytest.raises(ValueError, match="inverse_sqrt"): olmo_lr_schedule({**OLMO_1B, "scheduler": {"name": "inverse_sqrt_with_warmup"}}, 10)
    assert olmo_lr_schedule({**OLMO_1B, "scheduler": {"name": "constant"}}, 10) == dict(kind="constant", lr=4e-4, warmup_steps=0, total_steps=None, alpha_f=0.1)
    d = olmo_lr_schedule({**OLMO_1B, "scheduler": {"name": "linear_with_warmup", "t_warmup": 0}}, 5)   # no warmup: the origin moves to -1
    for s in (0, 5, 100, 739_327, 800_000):
        assert LRSchedule(**d)(s) == pytest.approx(olmo_lr({**OLMO_1B, "scheduler": {"name": "linear_with_warmup", "t_warmup": 0}}, s + 1, 739_328), rel=1e-13)
    assert olmo_lr(OLMO_1B, 1000, 739_328) == pytest.approx(4e-5 + 3.6e-4 * 1000 / 2000)   # OLMo warms up from 0.1·lr


def test_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="'allenai/OLMo-7B' at revision 'step40000-tokens177B'"):
        from_olmo_checkpoint("allenai/OLMo-7B", revision="step40000-tokens177B")
    with pytest.raises(ConnectionError, match="allenai/OLMo-1B.*offline"): list_revisions("allenai/OLMo-1B")
    assert time.perf_counter() - t0 < 5
    with pytest.raises(FileNotFoundError, match="does not exist"): from_olmo_checkpoint("./no/such/checkpoint")


def test_paper_checkpoints_table():
    assert [(c["model"], c["stage"], c["step"]) for c in PAPER_CHECKPOINTS] == [
        ("7B", "early", 40000), ("7B", "mid", 113000), ("7B", "late", 339000), ("1B", "early", 40000), ("1B", "mid", 117850), ("1B", "late", 358000)]
    for c in PAPER_CHECKPOINTS:
        assert olmo.parse_revision(c["revision"])[0] == c["step"] and c["unsharded_url"].endswith(f"/step{c['step']}-unsharded/")
        assert c["hub_repo"] == f"allenai/OLMo-{c['model']}" and (c["hf_repo"] is None) == (c["model"] == "7B")


def test_extract_from_config_paths(tmp_path):
    for k, n in enumerate((20, 9)): np.arange(n, dtype=np.uint16).tofile(tmp_path / f"part-{k}.npy")
    (tmp_path / "mirror" / "a" / "b").mkdir(parents=True)
    shutil.copy(tmp_path / "part-0.npy", tmp_path / "mirror" / "a" / "b" / "part-0.npy")   # the URL's path under data_root
    shutil.copy(tmp_path / "part-1.npy", tmp_path / "mirror" / "part-1.npy")               # found by its unique name
    np.arange(3, dtype=np.uint32).tofile(tmp_path / "gi.npy")
    import yaml
    yml = tmp_path / "c.yaml"
    yml.write_text(yaml.safe_dump({"model": {"max_sequence_length": 3}, "global_train_batch_size": 1,
                                   "data": {"paths": ["s3://ai2-llm/a/b/part-0.npy", "https://olmo-data.org/c/part-1.npy"]}}))
    out = extract_from_olmo_config(yml, tmp_path / "gi.npy", 0, 3, tmp_path / "o.u16", data_root=tmp_path / "mirror", progress=False)
    assert np.fromfile(out, dtype=np.uint16).tolist() == list(range(9))
    with pytest.raises(ValueError, match="is remote: pass data_root"): extract_from_olmo_config(yml, tmp_path / "gi.npy", 0, 3, tmp_path / "p.u16")
    with pytest.raises(ValueError, match="other inputs"):
        extract_batches([tmp_path / "part-0.npy"], tmp_path / "gi.npy", 3, 1, 0, 3, tmp_path / "o.u16")
    with pytest.raises(IndexError, match="outside the dataset"):
        extract_batches([tmp_path / "part-1.npy"], np.array([0, 5]), 3, 1, 0, 2, tmp_path / "q.u16")
