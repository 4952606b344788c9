"""ffka.core: one git commit, one JSON helper, one hash, one cache home, atomic writes, locks."""
import json, multiprocessing as mp, os, time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ffka.core import LockTimeout, atomic_write, cache_dir, config_hash, file_lock, git_commit, jsonable, repo_root


def test_one_home_for_the_helpers():
    "No module keeps its own copy (issue 10: two git_commit, two _jsonable, two repo_root, overlapping hashes)."
    import ffka
    src = {p.stem: p.read_text() for p in Path(ffka.__file__).parent.glob("*.py") if p.stem not in ("core", "_modidx")}
    for name in ("def git_commit", "def _jsonable", "def jsonable", "def repo_root", "def fingerprint", "def config_key", "def cache_dir"):
        assert not [m for m, s in src.items() if name + "(" in s], name


def test_git_commit_marks_dirty(tmp_path):
    c = git_commit()
    assert c is None or (len(c.split("+")[0]) == 40 and c.endswith(("+dirty",)) == bool(os.popen(f"git -C {repo_root()} status --porcelain --untracked-files=no").read().strip()))
    assert git_commit(tmp_path) is None


def test_jsonable_is_strict():
    assert jsonable({"a": (1, np.int64(2)), "b": Path("/x"), "c": float("inf")}) == {"a": [1, 2], "b": "/x", "c": None}
    with pytest.raises(TypeError, match="meta.opt: object value"): jsonable({"opt": object()}, "meta")


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none()), max_size=6))
def test_config_hash_is_order_independent(d):
    assert config_hash(d) == config_hash(dict(reversed(list(d.items()))))


def test_cache_dir_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FFKA_CACHE", str(tmp_path)); assert cache_dir("base") == tmp_path.resolve() / "base"
    monkeypatch.delenv("FFKA_CACHE"); assert cache_dir() == Path("~/.cache/ffka").expanduser().resolve()


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    f = atomic_write(tmp_path / "fig.png", b"good")
    def full_disk(p): p.write_bytes(b"ha"); raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="could not write .*fig.png"): atomic_write(f, full_disk)
    assert f.read_bytes() == b"good" and sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]


def _hold(p, q):
    with file_lock(p): q.put(1); time.sleep(2)


def test_file_lock_excludes_and_names_the_holder(tmp_path):
    ctx = mp.get_context("fork"); q = ctx.Queue(); p = ctx.Process(target=_hold, args=(tmp_path / "l", q)); p.start(); q.get(timeout=10)
    with pytest.raises(LockTimeout, match=f"in use by pid {p.pid}"):
        with file_lock(tmp_path / "l", timeout=0): pass
    t0 = time.time()
    with file_lock(tmp_path / "l", timeout=30): assert time.time() - t0 > 0.5       # waited for the holder
    p.join()
