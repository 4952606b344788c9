"""Shared fixtures. Reference data lives in ../shared/data (never copied into the repo)."""
import os
from pathlib import Path
import pytest

for _v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"): os.environ.setdefault(_v, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FK_DIR = SHARED_DATA / "fictional-knowledge"
OLMO_TOKENIZER = SHARED_DATA / "tokenizers" / "olmo-gpt-neox-dolma-v1_5.json"

def _reference(path: Path, what: str) -> Path:
    "The reference file/folder, or skip (a user's clone has no ../shared) — but fail under CI, which always has it."
    if path.exists() and not os.environ.get("FFKA_NO_SHARED"): return path
    msg = f"{what} not found at {path} (the reference data ../shared/data is not beside this checkout)"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"): pytest.fail(msg + "; CI runs with it")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def fk_dir():
    return _reference(FK_DIR, "reference dataset")

@pytest.fixture(scope="session")
def fk_items(fk_dir):
    from ffka.data import load_fictional_knowledge
    return load_fictional_knowledge(fk_dir)

@pytest.fixture(scope="session")
def olmo_tokenizer():
    _reference(OLMO_TOKENIZER, "OLMo tokenizer")
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(tokenizer_file=str(OLMO_TOKENIZER), eos_token="<|endoftext|>", pad_token="<|padding|>")

@pytest.fixture(scope="module")
def torch_one_thread():
    "One torch thread for a module: on a shared 2-core machine two threads per process oversubscribe it (4x slower here)."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
