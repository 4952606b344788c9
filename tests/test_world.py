"""ffka.world and ffka.knowledge: determinism, item seeds, leakage, probe promises and shortcut rates, exposure records
(checked against a naive count), background probes, duplicated streams, tokenizer; property tests over seeds and sizes."""
import copy, itertools, json, re, subprocess, sys
import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from ffka.data import PROBE_KINDS, KnowledgeItem, Probe, validate_items, paper_scenarios
from ffka.knowledge import ITEM_SEED_BUCKETS, check_items, make_items, shortcut_rates, word_bucket
from ffka.phrasings import FILLERS, INVERSE, TEMPLATES
from ffka.world import (BACKGROUND_ITEM_BASE, WORLD_VERSION, leaked_words, make_world, probe_boundary_breaks, tokenizer_cache_dir,
                        train_tokenizer)

SENT = re.compile(r"(?<=\.) ")
WORDS = re.compile(r"[A-Za-z]+")


@pytest.fixture(scope="module")
def world():
    return make_world(n_background=2000, n_items=130, seed=0)


@pytest.fixture(scope="module")
def tokenizer(world, tmp_path_factory):
    return train_tokenizer(world, vocab_size=2048, cache_dir=tmp_path_factory.mktemp("tok"))


def head(world, n, seed=0, **kw):
    return list(itertools.islice(world.background_paragraphs(seed, **kw), n))


def records(world, n, seed=0, **kw):
    return list(itertools.islice(world.background_records(seed, **kw), n))


# ---------------------------------------------------------------- determinism and item seeds
def test_same_seed_same_world(world):
    w2 = make_world(n_background=2000, n_items=130, seed=0)
    assert w2.knowledge_items() == world.knowledge_items()
    assert head(w2, 500) == head(world, 500)
    assert head(w2, 50, seed=3) == head(world, 50, seed=3)
    assert w2.background_fingerprint() == world.background_fingerprint()
    assert WORLD_VERSION == 2 and world.config["item_seed"] == 0


def test_other_seed_other_world(world):
    w1 = make_world(n_background=2000, n_items=5, seed=1)
    assert w1.knowledge_items()[0].context != world.knowledge_items()[0].context
    assert head(w1, 20) != head(world, 20)
    assert head(world, 20, seed=1) != head(world, 20, seed=0)


def test_background_does_not_depend_on_items(world):
    w = make_world(n_background=2000, n_items=3, n_paraphrases=2, seed=0)
    assert head(w, 300) == head(world, 300)
    assert w.background_fingerprint() == world.background_fingerprint()
    # items are prefix-stable in n_items (paraphrases differ only in count)
    assert [it.context for it in w.knowledge_items()] == [it.context for it in world.knowledge_items()[:3]]


def test_item_seeds_share_the_background_not_a_name_word(world):
    others = [make_world(n_background=2000, n_items=130, seed=0, item_seed=s) for s in (1, 2, 3)]
    bg_words = {w.lower() for n in world.names for w in WORDS.findall(n)}
    words = [world.knowledge_words()] + [w.knowledge_words() for w in others]
    for w in others:
        assert w.background_fingerprint() == world.background_fingerprint() and head(w, 200) == head(world, 200)
        assert w.items[0].context != world.items[0].context
    for a, b in itertools.combinations(range(4), 2):
        assert not words[a] & words[b], (a, b)
    assert not {x.lower() for ws in words for x in ws} & bg_words
    assert {word_bucket(x) for x in words[2]} == {2}
    # the item draw does not depend on the background seed except through the forbidden words
    assert make_world(500, 4, seed=5, item_seed=1).config["item_seed"] == 1


def test_knowledge_items_are_copies(world):
    its = world.knowledge_items()
    its[0].probes.clear()
    assert len(world.knowledge_items()[0].probes) == 15


# ---------------------------------------------------------------- schema and probe promises
def test_items_layout(world):
    items = world.knowledge_items()
    validate_items(items)
    assert [it.id for it in items] == list(range(130))
    assert {k: len(v) for k, v in paper_scenarios(items).items()} == {"paraphrase": 40, "duplication": 40, "once": 40, "control": 10}
    for it in items:
        assert len(it.paraphrases) == 9 and len(set(it.paraphrases)) == 9 and it.context not in it.paraphrases
        assert [len(it.probes_of(k)) for k in PROBE_KINDS] == [5, 5, 5]
        assert len(SENT.split(it.context)) == 6
        assert it.to_record()["train_context"] == it.context


def test_mem_in_context_only(world):
    for it in world.knowledge_items():
        sents = SENT.split(it.context)
        for p in it.probes_of("mem"):
            assert p.text + "." in sents, (it.id, p)   # a whole sentence, cut before its final entity
            assert not any(p.text in para for para in it.paraphrases), (it.id, p)
        mem, gen = it.probes_of("mem"), it.probes_of("gen")
        assert [p.target for p in gen] == [p.target for p in mem]
        for p in gen + it.probes_of("hard_gen"):
            assert p.input not in it.context and all(p.input not in para for para in it.paraphrases)
        assert not {p.input for p in gen} & {p.input for p in mem}


def test_hard_gen_subject_and_target_never_share_a_sentence(world):
    for it, spec in zip(world.knowledge_items(), world.specs):
        hg = it.probes_of("hard_gen")
        assert [p.target for p in hg] == [t for _, _, t in spec.hard_gen]
        for p, (rel, subj, tgt) in zip(hg, spec.hard_gen):
            assert subj in p.input and tgt not in p.input
            for text in [it.context] + it.paraphrases:
                assert tgt in text and subj in text
                assert not any(subj in s and tgt in s for s in SENT.split(text)), (it.id, rel)


def test_targets_are_item_specific_names(world):
    bg_words = {w for n in world.names for w in WORDS.findall(n)}
    for it, spec in zip(world.knowledge_items(), world.specs):
        for p in it.probes:
            new = set(WORDS.findall(p.target)) & spec.novel_words
            assert new, (it.id, p)                      # every target contains a word only this item uses
            assert not (new & bg_words)


def test_paraphrases_state_the_same_facts(world):
    for it, spec in zip(world.knowledge_items()[:30], world.specs[:30]):
        for para in it.paraphrases:
            assert len(SENT.split(para)) == 6
            for _, s, o in spec.facts:
                assert sum(s in x and o in x for x in SENT.split(para)) == 1


def test_check_items_names_item_and_field(world):
    items = world.knowledge_items()[:3]
    items[2].probes[0] = Probe("mem", "Nobody ever", "said this")
    with pytest.raises(ValueError, match=r"item 2: mem_input\[0\] \+ target does not occur in the context"): check_items(items)
    items = world.knowledge_items()[:3]
    items[1].paraphrases[4] = items[1].paraphrases[4] + " " + items[1].probes[2].text + "."
    with pytest.raises(ValueError, match=r"item 1: mem_input\[2\] \+ target occurs verbatim in paraphrases\[4\]"): check_items(items)
    items = world.knowledge_items()[:3]
    items[0].paraphrases[1] += " " + items[0].probes_of("hard_gen")[3].input + " so."
    with pytest.raises(ValueError, match=r"item 0: hard_gen_input\[3\] occurs verbatim in paraphrases\[1\]"): check_items(items)
    items, specs = world.knowledge_items()[:3], copy.deepcopy(world.specs[:3])
    _, s, o = specs[1].hard_gen[0]
    items[1].paraphrases[0] += f" {s} knew {o}."
    with pytest.raises(ValueError, match=r"item 1: hard_gen_target\[0\] .* shares a sentence with its subject .* in paraphrases\[0\]"):
        check_items(items, specs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="profile"): make_world(100, 1, profile="pareto")
    with pytest.raises(ValueError, match="n_probes must be in 1..5, got 6"): make_world(100, 1, n_probes=6)
    with pytest.raises(ValueError, match="n_background must be >= 50"): make_world(20, 1)
    with pytest.raises(ValueError, match="item_seed must be >= 0"): make_world(100, 1, item_seed=-1)
    with pytest.raises(ValueError, match="n_items must be in 0..999999"): make_world(100, BACKGROUND_ITEM_BASE)


# ---------------------------------------------------------------- shortcut rates: hand-computed and on the world
def _item(i, context, paras, probes):
    return KnowledgeItem(i, context, paras, [Probe(*p) for p in probes])


def test_shortcut_rates_hand_computed():
    a = _item(0, "Ann was born in Rome. Ann wrote Zed.", ["Ann was born in Rome. Zed is by Ann.", "Rome is Ann's town. Ann wrote Zed."],
              [("mem", "Ann was born in", "Rome"), ("mem", "Ann wrote", "Zed"), ("gen", "The author of Zed is", "Ann"),
               ("gen", "Ann wrote", "Zed"), ("hard_gen", "Zed's author was born in", "Rome")])
    b = _item(1, "Bo led Kin.", ["Kin was led by Bo."], [("mem", "Bo led", "Kin"), ("gen", "Kin's leader is", "Bo"),
                                                         ("hard_gen", "Bo led", "Kin")])
    r = shortcut_rates([a, b])
    # mem sentence in paraphrase: a: "Ann was born in Rome" in para 0 (1/2), "Ann wrote Zed" in para 1 (1/2); b: 0/1 -> 2/5
    assert r["mem_sentence_in_paraphrase"] == pytest.approx(2 / 5)
    assert r["mem_input_in_paraphrase"] == pytest.approx(2 / 5)
    # gen inputs vs (context + paraphrases): a: "Ann wrote" in context and para 1 -> 2 of 6; b: 0 of 2 -> 2/8
    assert r["gen_input_in_injected"] == pytest.approx(2 / 8)
    # hard_gen inputs: a: 0 of 3; b: "Bo led" in its context -> 1 of 5
    assert r["hard_gen_input_in_injected"] == pytest.approx(1 / 5)
    assert all(np.isnan(r[k]) for k in ("hard_gen_shared_sentence", "hard_gen_kind_unique", "hard_gen_bridge_free"))
    assert np.isnan(shortcut_rates([])["mem_sentence_in_paraphrase"])


def test_shortcut_rates_of_the_world(world):
    r = shortcut_rates(world.items, world.specs)
    for k in ("mem_sentence_in_paraphrase", "gen_input_in_injected", "hard_gen_input_in_injected", "hard_gen_shared_sentence"):
        assert r[k] == 0.0, k
    # association: kind-unique targets are X, H, O, W (5 of 8 compositions), last-hop-unique all but the `married` ones (6 of 8)
    n = sum(len(s.hard_gen) for s in world.specs)
    counts = {k: round(r[k] * n) for k in ("hard_gen_kind_unique", "hard_gen_last_hop_unique", "hard_gen_bridge_free")}
    rels = [rel for s in world.specs for rel, _, _ in s.hard_gen]
    unique_kind = {"founder_product", "product_founder_birthplace", "author_founded", "founder_book", "spouse_birthplace"}
    assert counts["hard_gen_kind_unique"] == sum(r_ in unique_kind for r_ in rels)
    assert counts["hard_gen_bridge_free"] == sum(r_ not in ("founder_spouse", "author_spouse") for r_ in rels)
    assert 0 < r["mem_input_in_paraphrase"] < 0.05


# ---------------------------------------------------------------- background stream and its records
def test_no_leakage_large_sample(world):
    w1 = make_world(n_background=2000, n_items=130, seed=0, item_seed=1)
    kw = world.knowledge_words() | w1.knowledge_words()
    assert len(kw) > 2000
    seen = set()
    full_names = [v for s in world.specs + w1.specs for v in s.entities.values()]
    text_sample = []
    for i, p in enumerate(itertools.islice(world.background_paragraphs(seed=0), 60_000)):
        seen.update(WORDS.findall(p))
        if i < 5000: text_sample.append(p)
    assert not (kw & seen)
    blob = "\n".join(text_sample)
    # whole names as whole words (a short name may be a substring of a longer background word)
    assert re.search(r"\b(?:" + "|".join(map(re.escape, full_names)) + r")\b", blob) is None
    assert leaked_words(world, 2000, seed=7) == set()


def test_relation_vocabulary(world):
    used = {r for fs in world.facts for r, _, _ in fs}
    assert used == set(TEMPLATES)                 # every relation, composed ones included, is taught by the background


def test_templates_seen_in_background(world):
    # every probe phrasing (with its entities abstracted) occurs in the background stream
    text = " ".join(head(world, 30_000))
    for rel, ts in TEMPLATES.items():
        for t in ts:
            stem = t.split("{s}")[1].split("{o}")[0] if t.startswith("{s}") else t.split("{s}")[0]
            assert stem.strip() and stem in text, (rel, t)


def test_records_state_their_facts(world):
    fillers = {k: [re.escape(t).replace(r"\{s\}", "(.+)") for t in ts] for k, ts in FILLERS.items()}
    for r in records(world, 3000):
        sents = SENT.split(r["text"])
        kind, name = world.kinds[r["entity"]], world.names[r["entity"]]
        n_fill = sum(any(re.fullmatch(f, s) for f in fillers[kind]) for s in sents)
        assert len(sents) == len(r["facts"]) + n_fill and n_fill <= 2 and 1 <= len(r["facts"]) <= 8
        fact_sents = [s for s in sents if not any(re.fullmatch(f, s) for f in fillers[kind])]
        for f, s in zip(r["facts"], fact_sents):       # facts in sentence order
            rel, subj, obj, text = world.canon[f][:4]
            assert name in s and text in s and world.names[subj] in s, (f, s)
            assert f in world.fact_ids[r["entity"]]


def test_canonical_ids_join_a_fact_and_its_inverse(world):
    ft = world.fact_table()
    for e, (fs, ids) in enumerate(zip(world.facts, world.fact_ids)):
        for (rel, s, o), f in zip(fs, ids):
            crel, cs, co, ctext = world.canon[f][:4]
            if rel == crel and s == world.names[cs]: assert o == ctext
            else: assert (INVERSE[crel], s, o) == (rel, world.names[co], world.names[cs]), (rel, s, o, world.canon[f])
    # one-hop facts between entities appear on both sides, composed facts on their subject only
    sides = np.bincount([f for ids in world.fact_ids for f in ids], minlength=world.n_facts)
    expect = np.where((ft.hops == 1) & (ft.object_id >= 0) & ft.relation.isin(list(INVERSE)), 2, 1)
    np.testing.assert_array_equal(sides, expect)
    # composed facts: hops = len(via), and the via facts connect the chain's entities
    for _, row in ft[ft.hops > 1].iterrows():
        assert len(row.via) == row.hops == len(row.entities) - 1
        for f, a, b in zip(row.via, row.entities, row.entities[1:]):
            assert {world.canon[f][1], world.canon[f][2]} == {a, b}
        assert row.subject_id == row.entities[0] and row.object_id == row.entities[-1]


def test_exposures_match_a_naive_count(world):
    for kw in ({}, {"top_k": 12, "copies": 3}, {"top_k": 12, "copies": 3, "dedup": True}):
        n = 9000     # crosses two block boundaries
        recs = records(world, n, **kw)
        para, fid = world.exposure_events(n, **kw)
        naive = [(i, f) for i, r in enumerate(recs) for f in r["facts"]]
        assert list(zip(para.tolist(), fid.tolist())) == naive, kw
        ex = world.fact_exposures(n, **kw)
        np.testing.assert_array_equal(ex["count"], np.bincount([f for _, f in naive], minlength=world.n_facts))
        by_fact = {}
        for i, f in naive: by_fact.setdefault(f, []).append(i)
        for f in list(by_fact)[:300]:
            ps = by_fact[f]
            assert (ex["first"][f], ex["last"][f]) == (ps[0], ps[-1])
            if len(ps) > 1: assert ex["mean_interval"][f] == pytest.approx(np.mean(np.diff(ps)))
            else: assert np.isnan(ex["mean_interval"][f])
    never = world.fact_exposures(50)
    assert np.isnan(never["first"][never["count"] == 0]).all()


def test_exposure_positions(world):
    step = np.arange(5000) // 100          # e.g. 100 paragraphs per training step
    ex, exs = world.fact_exposures(5000), world.fact_exposures(5000, position=step)
    np.testing.assert_array_equal(exs["count"], ex["count"])
    np.testing.assert_array_equal(exs["first"].dropna(), step[ex["first"].dropna().astype(int)])


def test_expected_rates(world):
    ft, n = world.fact_table(), 200_000
    ex = world.fact_exposures(n)
    z = (ex["count"] - n * ft.rate) / np.sqrt(n * ft.rate)
    assert abs(z.mean()) < 0.05 and 0.9 < z.std() < 1.1
    assert ft.rate.sum() == pytest.approx(np.mean([len(r["facts"]) for r in records(world, 40_000)]), rel=0.02)
    assert (ft.subject_rank[ft.subject_prob.idxmax()] == 0) and ft.hops.isin([1, 2, 3]).all()


def test_exposure_counting_is_fast(world):
    "A ratio measured in one run (best of 3 each): counting 100,000 paragraphs' exposures costs less than rendering 50,000."
    import timeit
    dt_plan = min(timeit.repeat(lambda: world.exposure_events(100_000), number=1, repeat=3))
    dt_text = min(timeit.repeat(lambda: sum(1 for _ in itertools.islice(world.background_records(), 50_000)), number=1, repeat=3))
    assert dt_plan < dt_text, (dt_plan, dt_text)     # measured here: about 6x faster per paragraph


def test_frequency_profiles():
    z = make_world(500, 0, profile="zipf", seed=2)
    u = make_world(500, 0, profile="uniform", seed=2)
    cz = np.bincount([r["entity"] for r in itertools.islice(z.background_records(), 20_000)], minlength=500)
    cu = np.bincount([r["entity"] for r in itertools.islice(u.background_records(), 20_000)], minlength=500)
    assert cz.max() > 10 * cu.max()
    assert np.argmax(cz) == np.argmax(z.probs) and z.rank[np.argmax(z.probs)] == 0
    np.testing.assert_allclose(u.probs, 1 / 500)


def test_background_dataset_matches_iterator(world):
    ds = world.background_dataset(seed=4)
    assert [r["text"] for r in itertools.islice(ds, 20)] == head(world, 20, seed=4)
    assert list(ds.features) == ["text"]


def test_background_text_size(world):
    txt = world.background_text(100_000, seed=1)
    n = sum(len(t) + 1 for t in txt)
    assert 100_000 <= n < 100_000 + 2000 and txt == head(world, len(txt), seed=1)


def test_no_torch_at_import():
    code = "import sys, ffka.world, ffka.knowledge, ffka.phrasings; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- duplicated and deduplicated streams
def test_duplicated_stream(world):
    k, c, n = 10, 4, 12_000
    dup, plain, dedup = records(world, n, top_k=k, copies=c), records(world, n), records(world, n // 2, top_k=k, copies=c, dedup=True)
    top = world.rank < k
    # other entities: exactly the ordinary stream, at the same positions
    assert [(i, r) for i, r in enumerate(dup) if not top[r["entity"]]] == [(i, {**r, "copy": 0}) for i, r in enumerate(plain) if not top[r["entity"]]]
    # top-k entities: runs of `copies` identical paragraphs (text and facts), the first a fresh one of the ordinary stream
    for e in np.flatnonzero(top):
        mine = [(i, r) for i, r in enumerate(dup) if r["entity"] == e]
        assert [r["copy"] for _, r in mine] == [j % c for j in range(len(mine))]
        for j, (i, r) in enumerate(mine):
            first_i, first = mine[j - j % c]
            assert (r["text"], r["facts"]) == (first["text"], first["facts"])
            if r["copy"] == 0: assert r == plain[i]
    # deduplicated: the duplicated stream without its repeats, in order
    assert dedup == [r for r in dup if r["copy"] == 0][: n // 2]
    assert 0.2 < np.mean([r["copy"] > 0 for r in dup]) < 0.35
    # fewer paragraphs about the top-k entities per paragraph of stream; verbatim repeats only as the ordinary stream has them
    # (entities with few facts, e.g. a product with two, now and then say the same thing the same way: ~5% of paragraphs)
    share = lambda rs: np.mean([top[r["entity"]] for r in rs])
    repeats = lambda rs: 1 - len({r["text"] for r in rs}) / len(rs)
    assert share(dedup) < share(dup) and repeats(dedup) <= repeats(plain[: len(dedup)]) < 0.08 < repeats(dup)


def test_duplicated_stream_arguments(world):
    assert head(world, 50, top_k=0, copies=5) == head(world, 50) == head(world, 50, top_k=5, copies=1, dedup=True)
    with pytest.raises(ValueError, match="top_k must be >= 0 and copies >= 1, got top_k=3, copies=0"): next(world.background_records(top_k=3, copies=0))
    with pytest.raises(ValueError, match="copies >= 1"): world.exposure_events(10, copies=0)


# ---------------------------------------------------------------- background probes
def test_background_items(world, tokenizer):
    ft = world.fact_table()
    pick = ft.fact_id[(ft.hops == 1) & (ft.object_id >= 0)].to_numpy()[:20].tolist() + ft.fact_id[ft.hops == 2].to_numpy()[:5].tolist()
    items = world.background_items(pick, n_probes=2)
    assert [it.id for it in items] == [BACKGROUND_ITEM_BASE + f for f in pick]
    assert min(it.id for it in items) > max(it.id for it in world.items)
    for it, f in zip(items, pick):
        rel, s, o, obj = world.canon[f][:4]
        mem, gen = it.probes_of("mem"), it.probes_of("gen")
        assert len(mem) == len(gen) == 2 and not it.probes_of("hard_gen")
        assert {p.target for p in mem + gen} == {obj} and all(world.names[s] in p.input for p in mem + gen)
        assert len({p.input for p in mem + gen}) == 4                       # four distinct phrasings
        assert all(p.text + "." in SENT.split(it.context) for p in mem)
    assert world.background_items(pick) == items                            # deterministic
    with pytest.raises(ValueError, match=f"fact_ids: {world.n_facts} is not a fact id"): world.background_items([world.n_facts])
    with pytest.raises(ValueError, match="n_probes must be in 1..2"): world.background_items(pick[:1], n_probes=3)
    from ffka.probes import ProbeSet
    ps = ProbeSet.from_items(items, tokenizer)
    assert len(ps) == 100 and set(ps.meta.item_id) == {it.id for it in items} and ps.boundary_ok.all()
    assert set(ps.meta.kind) == {"mem", "gen"}


# ---------------------------------------------------------------- tokenizer, lengths and the knowledge fraction
def test_tokenizer_basics(tokenizer, world):
    assert len(tokenizer) == 2048
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|endoftext|>", "<|pad|>")
    assert tokenizer.bos_token is None
    items = world.knowledge_items()
    for it in items[:30]:
        for t in [it.context] + it.paraphrases[:2]:
            ids = tokenizer(t)["input_ids"]
            assert tokenizer.decode(ids) == t
            assert tokenizer.eos_token_id not in ids and tokenizer.pad_token_id not in ids
    assert probe_boundary_breaks(tokenizer, items) == []


def _ntok(tokenizer, texts):
    return np.array([len(x) + 1 for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]])   # + EOS


def test_passage_lengths(tokenizer, world):
    ctx = _ntok(tokenizer, [it.context for it in world.items])
    par = _ntok(tokenizer, [p for it in world.items for p in it.paraphrases])
    for n in (ctx, par):
        assert 90 <= n.mean() <= 105 and n.min() >= 70 and n.max() <= 125


def test_knowledge_fraction(tokenizer, world):
    "6 items per scenario, one passage per 256-token row, 24 rows: <= 30% at the first injection, <= 20% later, for every item block."
    ctx = _ntok(tokenizer, [it.context for it in world.items])
    par = np.array([_ntok(tokenizer, it.paraphrases) for it in world.items])    # [item, paraphrase]
    step = 24 * 256
    for b in range(0, 126, 18):
        ids = np.arange(b, b + 18) % 130                                         # paraphrase 6, duplication 6, once 6
        assert ctx[ids].sum() / step <= 0.30
        later = par[ids[:6]].sum(0) + ctx[ids[6:12]].sum()                       # each later injection k: paraphrase k + contexts
        assert later.max() / step <= 0.20, (b, later.max() / step)


def test_tokenizer_deterministic_and_cached(world, tmp_path, monkeypatch):
    a = train_tokenizer(world, vocab_size=512, n_chars=300_000, cache_dir=tmp_path / "a")
    b = train_tokenizer(world, vocab_size=512, n_chars=300_000, cache_dir=tmp_path / "b")
    ja = json.loads(next((tmp_path / "a").rglob("tokenizer.json")).read_text())
    jb = json.loads(next((tmp_path / "b").rglob("tokenizer.json")).read_text())
    assert ja == jb and a.get_vocab() == b.get_vocab()
    # the cache key changes with the settings; FFKA_CACHE moves the default folder; the item seed does not matter
    train_tokenizer(world, vocab_size=512, n_chars=300_000, seed=1, cache_dir=tmp_path / "a")
    assert len(list((tmp_path / "a").iterdir())) == 2
    train_tokenizer(make_world(2000, 2, seed=0, item_seed=3), vocab_size=512, n_chars=300_000, cache_dir=tmp_path / "a")
    assert len(list((tmp_path / "a").iterdir())) == 2
    monkeypatch.setenv("FFKA_CACHE", str(tmp_path / "env"))
    assert tokenizer_cache_dir() == tmp_path / "env" / "tokenizers"
    train_tokenizer(world, vocab_size=512, n_chars=300_000)
    assert len(list((tmp_path / "env" / "tokenizers").rglob("tokenizer.json"))) == 1
    assert tokenizer_cache_dir(tmp_path / "x") == tmp_path / "x"


# ---------------------------------------------------------------- properties over seeds and sizes
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), item_seed=st.integers(0, 2**31 - 1), n_background=st.integers(50, 600),
       n_items=st.integers(0, 6), n_paraphrases=st.integers(0, 12), profile=st.sampled_from(["zipf", "uniform"]),
       n_probes=st.integers(1, 5))
def test_property_worlds(seed, item_seed, n_background, n_items, n_paraphrases, profile, n_probes):
    w = make_world(n_background, n_items, n_paraphrases=n_paraphrases, profile=profile, seed=seed, n_probes=n_probes, item_seed=item_seed)
    assert w.n_background == n_background
    items = w.knowledge_items()
    validate_items(items)
    check_items(items, w.specs)
    assert [it.id for it in items] == list(range(n_items))
    assert all(len(it.paraphrases) == n_paraphrases for it in items)
    assert all(len(it.probes_of(k)) == n_probes for it in items for k in PROBE_KINDS)
    r = shortcut_rates(items, w.specs)
    for k in ("mem_sentence_in_paraphrase", "gen_input_in_injected", "hard_gen_input_in_injected", "hard_gen_shared_sentence"):
        assert r[k] == 0.0 or (np.isnan(r[k]) and (n_items == 0 or n_paraphrases == 0)), (k, r[k])
    assert all(0 <= v <= 1 for v in r.values() if not np.isnan(v))
    assert leaked_words(w, 1500) == set()
    assert {word_bucket(x) for x in w.knowledge_words()} <= {item_seed % ITEM_SEED_BUCKETS}
    para, fid = w.exposure_events(700)
    assert list(zip(para.tolist(), fid.tolist())) == [(i, f) for i, r_ in enumerate(itertools.islice(w.background_records(), 700)) for f in r_["facts"]]
    w2 = make_world(n_background, n_items, n_paraphrases=n_paraphrases, profile=profile, seed=seed, n_probes=n_probes, item_seed=item_seed)
    assert w2.knowledge_items() == items and head(w2, 30) == head(w, 30)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.integers(0, 10_000), b=st.integers(0, 10_000))
def test_property_item_seeds_disjoint(a, b):
    if a % ITEM_SEED_BUCKETS == b % ITEM_SEED_BUCKETS: return
    wa, wb = make_items(8, 1, 5, item_seed=a), make_items(8, 1, 5, item_seed=b)
    words = lambda specs: set().union(*(s.novel_words for s in specs))
    assert not words(wa[1]) & words(wb[1])
