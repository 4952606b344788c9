"""ffka.streams: world, Hugging Face and token-file streams — fixed order, exact seek."""
import numpy as np
import pytest

from ffka.streams import TokenFileStream, write_token_rows, world_stream, hf_stream


@pytest.fixture(scope="module")
def world_and_tok(tmp_path_factory):
    from ffka.world import make_world, train_tokenizer
    w = make_world(n_background=200, n_items=8, n_paraphrases=3, seed=0)
    return w, train_tokenizer(w, vocab_size=512, n_chars=100_000, cache_dir=tmp_path_factory.mktemp("tok"))


# ---------------------------------------------------------------- streams
def test_world_stream_order_and_resume(world_and_tok):
    w, tok = world_and_tok
    a = world_stream(w, tok, 32, seed=3).take(10)
    assert np.array_equal(a, world_stream(w, tok, 32, seed=3).take(10))               # same seed, same rows
    assert not np.array_equal(a, world_stream(w, tok, 32, seed=4).take(10))           # another seed, other text
    assert np.array_equal(world_stream(w, tok, 32, seed=3, start_row=6).take(4), a[6:])  # resume from a position
    s = world_stream(w, tok, 32, seed=3); s.take(7); assert s.state() == {"position": 7}
    assert np.array_equal(s.seek(2).take(1), a[2:3])                                  # seek backwards replays
    # documents are joined by EOS: the first row starts with the first paragraph's tokens
    first = next(iter(w.background_paragraphs(seed=3)))
    ids = tok(first, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert a.ravel()[:len(ids)].tolist() == ids[:32 * 10]


def test_hf_stream_matches_world_stream(world_and_tok):
    w, tok = world_and_tok
    ds = w.background_dataset(seed=1)                      # a datasets.IterableDataset with column "text"
    a = hf_stream(ds, tok, 32).take(6)
    assert np.array_equal(a, world_stream(w, tok, 32, seed=1).take(6))
    assert np.array_equal(hf_stream(ds, tok, 32, start_row=4).take(2), a[4:])
    sh = [hf_stream(ds, tok, 32, seed=7, shuffle_buffer=50).take(6) for _ in range(2)]
    assert np.array_equal(*sh) and not np.array_equal(sh[0], a)
    with pytest.raises(KeyError, match="no column 'body'"):
        hf_stream(ds, tok, 32, text_column="body").take(1)


@pytest.mark.parametrize("dtype,hi", [("uint16", 50_279), ("uint32", 100_000)])
def test_token_file_stream(tmp_path, dtype, hi):
    rows = np.random.default_rng(0).integers(0, hi + 1, size=(9, 16))
    p = write_token_rows(tmp_path / "0-9.npy", rows, dtype)          # raw .tofile, as extract_dolma_data_subset.py
    assert p.stat().st_size == rows.size * np.dtype(dtype).itemsize
    s = TokenFileStream(p, seq_len=16, dtype=dtype, start_row=3)
    assert np.array_equal(s.take(4), rows[3:7]) and s.position == 7
    assert np.array_equal(s.seek(0).take(9), rows)
    with pytest.raises(EOFError, match="the file has 9 rows"): s.take(1)
    with pytest.raises(ValueError, match="not a multiple of seq_len"): TokenFileStream(p, seq_len=10, dtype=dtype)
    if dtype == "uint16":
        with pytest.raises(ValueError, match="do not fit uint16"): write_token_rows(tmp_path / "x", [[70_000]], "uint16")


