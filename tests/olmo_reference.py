"""Reference data from OLMo's own code (ai2-olmo), for tests/test_olmo.py. Runs inside the ai2-olmo venv only:

    python tests/olmo_reference.py checkpoints OUT   # tiny OLMo models trained and checkpointed by OLMo's code
    python tests/olmo_reference.py memmap OUT        # OLMo's MemMapDataset + IterableDataset order over synthetic files

`checkpoints` builds `olmo.model.OLMo` from a tiny `ModelConfig` (an untied head with grouped KV heads and block
groups; a tied head with QKV clipping and decayed embeddings), trains 3 steps the way OLMo's `Trainer.train_step`
does (global step incremented first, gradient clipping with `clip_grads_and_collect_metrics`, the LR from
`build_scheduler` at `Trainer.scheduler_current/scheduler_max`), and writes the checkpoint with OLMo's
`FullCheckpointer` under DDP (the only wrapper that runs on a CPU; FSDP needs an accelerator). That file is the
id-keyed optimizer layout with DDP's `module.` names. From it the script writes the other layouts OLMo reads:
id-keyed with FSDP `_fsdp_wrapped_module.` prefixes (older FSDP files), name-keyed with prefixes (FSDP's full optim
state dict), the `.safetensors` files (`olmo.safetensors_util`), and the hf_olmo layout of the hub revisions
(`hf_olmo.convert_olmo_to_hf`: config.json + pytorch_model.bin under `model.transformer.`); it checks with OLMo's own
`FullCheckpointer._make_optim_state_dict_compatible` that the FSDP layouts are equivalent. Then it saves reference
logits for a fixed batch, and the clipped gradients and parameters of ONE more training step. The loss is the paper's fork's
(commit 7e40489): mean cross-entropy over the next-token predictions.
"""
import copy, json, os, re, shutil, sys, tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

B, L, V = 4, 16, 100


def _init_dist():
    for k, v in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1").items(): os.environ.setdefault(k, v)
    if not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.FileStore(tempfile.mktemp(), 1), rank=0, world_size=1)


VARIANTS = {
    "untied": dict(model=dict(weight_tying=False, n_kv_heads=2, block_group_size=2),
                   optimizer=dict(decay_embeddings=False),
                   scheduler=dict(name="linear_with_warmup", t_warmup=2, alpha_f=0.1), max_duration="2000T"),
    "tied": dict(model=dict(weight_tying=True, clip_qkv=0.5),
                 optimizer=dict(decay_embeddings=True),
                 scheduler=dict(name="cosine_with_warmup", t_warmup=2, alpha_f=0.1), max_duration=40),
}


def _train_config(v):
    from olmo.config import ModelConfig, OptimizerConfig, SchedulerConfig, TrainConfig
    mc = ModelConfig(d_model=32, n_heads=4, n_layers=2, mlp_ratio=4, vocab_size=V, embedding_size=128, rope=True, alibi=False,
                     include_bias=False, layer_norm_type="default", layer_norm_with_affine=False, attention_dropout=0.0,
                     residual_dropout=0.0, embedding_dropout=0.0, max_sequence_length=L, init_device="cpu", init_fn="normal",
                     init_std=0.2, eos_token_id=V - 1, pad_token_id=1, **v["model"])
    return TrainConfig(model=mc, optimizer=OptimizerConfig(name="adamw", learning_rate=1e-2, weight_decay=0.1, betas=(0.9, 0.95),
                                                           eps=1e-5, **v["optimizer"]),
                       scheduler=SchedulerConfig(**v["scheduler"]), max_duration=v["max_duration"], global_train_batch_size=B,
                       device_train_microbatch_size=B, max_grad_norm=0.5, save_overwrite=True, seed=0)


def _trainer_state(cfg, step, tokens):
    "The trainer's counters, with OLMo's own Trainer properties (max_steps, scheduler_current, ...) reading them."
    from olmo.train import Trainer
    class TrainerState(SimpleNamespace):
        tokens_per_batch, max_steps, max_tokens = Trainer.tokens_per_batch, Trainer.max_steps, Trainer.max_tokens
        scheduler_current, scheduler_max = Trainer.scheduler_current, Trainer.scheduler_max
    return TrainerState(cfg=cfg, global_step=step, global_train_tokens_seen=tokens)


def _train_step(dist_model, optim, scheduler, cfg, st, batch):
    "Trainer.train_step on one micro-batch, with the loss of the paper's fork."
    st.global_step += 1; st.global_train_tokens_seen += B * L            # Trainer.fit: bookkeeping before the step
    optim.zero_grad(set_to_none=True)
    logits = dist_model(input_ids=batch).logits
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
    loss.backward()
    grad_norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in dist_model.parameters())).item()
    optim.clip_grads_and_collect_metrics(st.global_step, collect_param_metrics=False)
    grads = {n: q.grad.detach().clone() for n, q in dist_model.module.named_parameters()}   # clipped, as optim.step sees them
    cur, mx = st.scheduler_current, st.scheduler_max
    lr = scheduler.get_lr(cfg.optimizer.learning_rate, cur, mx)
    for g in optim.param_groups:
        g["lr"] = lr
        g["max_grad_norm"] = scheduler.get_max_grad_norm(cfg.max_grad_norm, cur, mx)
        g["max_grad_norm_ratio"] = scheduler.get_max_grad_norm(cfg.max_grad_norm_ratio, cur, mx)
    optim.step()
    return dict(loss=loss.item(), lr=lr, grad_norm=grad_norm, max_steps=mx, grads=grads)


def _prefixed(name):
    "An FSDP (by-block wrapping) name: wrapper prefixes at the root and inside each block."
    n = re.sub(r"^module\.", "", name)
    return "_fsdp_wrapped_module." + re.sub(r"(transformer\.(?:blocks|block_groups)\.\d+\.)", r"\1_fsdp_wrapped_module.", n)


def _layouts(ddp_dir: Path, out: Path):
    "The other optimizer layouts OLMo reads, from the DDP (id-keyed, `module.` names) file OLMo wrote."
    from olmo.checkpoint import FullCheckpointer
    from olmo.safetensors_util import state_dict_to_safetensors_file
    osd = torch.load(ddp_dir / "optim.pt", weights_only=False)
    ids = copy.deepcopy(osd)                                              # older FSDP full_optim_state_dict: ids + prefixed names
    for g in ids["param_groups"]: g["param_names"] = [_prefixed(n) for n in g["param_names"]]
    names = {"state": {}, "param_groups": []}                             # FSDP.optim_state_dict: keyed by (prefixed) name
    for g in ids["param_groups"]:
        names["param_groups"].append({**{k: v for k, v in g.items() if k != "params"}, "params": list(g["param_names"])})
        names["state"].update({n: osd["state"][i] for i, n in zip(g["params"], g["param_names"])})
    a = FullCheckpointer._make_optim_state_dict_compatible(None, copy.deepcopy(ids), {n: {n} for g in ids["param_groups"] for n in [x.replace("_fsdp_wrapped_module.", "") for x in g["param_names"]]})
    b = FullCheckpointer._make_optim_state_dict_compatible(None, copy.deepcopy(names), {n: {n} for g in ids["param_groups"] for n in [x.replace("_fsdp_wrapped_module.", "") for x in g["param_names"]]})
    assert a["state"].keys() == b["state"].keys() and all(torch.equal(a["state"][k]["exp_avg"], b["state"][k]["exp_avg"]) for k in a["state"])
    for kind, sd in (("fsdp-ids", ids), ("fsdp-names", names)):
        d = out.parent / f"{out.name}-{kind}"; shutil.copytree(ddp_dir, d); torch.save(sd, d / "optim.pt")
    d = out.parent / f"{out.name}-safetensors"; shutil.copytree(ddp_dir, d)
    state_dict_to_safetensors_file(torch.load(d / "model.pt", weights_only=True), d / "model.safetensors")
    state_dict_to_safetensors_file(names, d / "optim.safetensors")
    (d / "model.pt").unlink(); (d / "optim.pt").unlink()
    d = out.parent / f"{out.name}-hf_olmo"; shutil.copytree(ddp_dir, d)   # a hub revision's layout, by OLMo's own converter
    from hf_olmo.convert_olmo_to_hf import write_config, write_model
    write_config(str(d)); write_model(str(d))
    for f in ("config.yaml", "model.pt", "optim.pt", "train.pt"): (d / f).unlink()
    return sorted(p.name for p in out.parent.glob(f"{out.name}-*"))


def checkpoints(out: Path):
    import random
    from torch.nn.parallel import DistributedDataParallel as DDP
    from olmo.checkpoint import FullCheckpointer
    from olmo.model import OLMo
    from olmo.optim import build_optimizer, build_scheduler
    torch.set_num_threads(1)
    _init_dist()
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name, v in VARIANTS.items():
        cfg = _train_config(v)
        torch.manual_seed(0); np.random.seed(0); random.seed(0)
        model = OLMo(cfg.model)
        dist_model = DDP(model)
        optim, scheduler = build_optimizer(cfg, dist_model), build_scheduler(cfg)   # as scripts/train.py does
        st = _trainer_state(cfg, 0, 0)
        g = torch.Generator().manual_seed(1)
        for _ in range(3): _train_step(dist_model, optim, scheduler, cfg, st, torch.randint(0, V, (B, L), generator=g))
        ddp_dir = out / f"{name}-ddp"
        shutil.rmtree(ddp_dir, ignore_errors=True)
        cfg.save_folder = str(out)
        trainer_state = {"epoch": 0, "global_step": st.global_step, "global_train_examples_seen_this_epoch": st.global_step * B,
                         "global_train_tokens_seen": st.global_train_tokens_seen, "world_size": 1, "checkpoints": [ddp_dir],
                         "unsharded_checkpoints": [], "ephemeral_checkpoints": [],
                         "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.random.get_rng_state()}}
        FullCheckpointer(cfg).save_checkpoint(ddp_dir, dist_model, optim, trainer_state)
        layouts = _layouts(ddp_dir, out / name)
        x_eval = torch.randint(0, V, (3, L), generator=g)
        model.eval()
        with torch.no_grad(): logits = model(input_ids=x_eval).logits
        model.train()
        x_train = torch.randint(0, V, (B, L), generator=g)
        info = _train_step(dist_model, optim, scheduler, cfg, st, x_train)
        mx = _trainer_state(cfg, 3, 3 * B * L).max_steps             # what the trainer computes at the checkpoint
        lr_table = [[s, scheduler.get_lr(cfg.optimizer.learning_rate, s + 1, mx)] for s in range(0, mx + 3)]
        ref = dict(x_eval=x_eval, logits=logits, x_train=x_train, params_after={k: t.detach().clone() for k, t in model.state_dict().items()},
                   grads=info["grads"], step_after=st.global_step)
        torch.save(ref, out / f"{name}-reference.pt")
        summary[name] = dict(layouts=layouts, max_steps=mx, lr_table=lr_table, param_groups=[g["param_names"] for g in optim.param_groups],
                             **{k: info[k] for k in ("loss", "lr", "grad_norm")})
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


def memmap(out: Path):
    "Token files of lengths not divisible by seq_len, OLMo's data order, and the instances of its batches."
    from olmo.data.iterable_dataset import IterableDataset
    from olmo.data.memmap_dataset import MemMapDataset
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    seq_len, batch = 8, 4
    paths = []
    for k, n in enumerate((101, 3, 64, 250, 77)):
        p = out / f"part-{k:03d}-00000.npy"; rng.integers(0, 50_000, n, dtype=np.uint16).tofile(p); paths.append(str(p))
    ds = MemMapDataset(*paths, chunk_size=seq_len, memmap_dtype=np.uint16, include_instance_metadata=False)
    it = IterableDataset(ds, batch, seed=6198, shuffle=True, drop_last=True, world_size=1, rank=0, fs_local_rank=0, work_dir=out / "train_data")
    start, n = 3, 5
    it.start_index = start * batch                                        # what the trainer sets when it resumes at batch `start`
    rows = [x["input_ids"].numpy() for _, x in zip(range(n * batch), iter(it))]
    np.save(out / "expected.npy", np.stack(rows).astype(np.int64))
    (out / "memmap.json").write_text(json.dumps(dict(paths=paths, seq_len=seq_len, batch_size=batch, start_batch=start, n_batches=n,
                                                     global_indices=str(it.global_indices_file), n_instances=len(ds))))


if __name__ == "__main__":
    {"checkpoints": checkpoints, "memmap": memmap}[sys.argv[1]](Path(sys.argv[2]))
