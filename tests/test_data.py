"""ffka.data: the real dataset loads exactly; every malformed input fails with item and field named."""
import copy, json, os
from pathlib import Path
import pytest
from hypothesis import given, settings, strategies as st

from ffka.data import (PROBE_KINDS, KnowledgeItem, Probe, items_from_records, load_fictional_knowledge,
                       paper_scenarios, scenarios, validate_items, validate_record)

def _good(n_probes=2):
    rec = {"train_context": "Alpha Veyr founded Quill Labs. Quill Labs makes the Tessel engine.",
           "paraphrases": ["Quill Labs, founded by Alpha Veyr, makes the Tessel engine."]}
    for k in PROBE_KINDS:
        rec[f"{k}_input"] = [f"{k} input {j} – with an en dash" for j in range(n_probes)]
        rec[f"{k}_target"] = [f"Target {k} {j}" for j in range(n_probes)]
    return rec

# --- the real dataset -------------------------------------------------------------------------------
def test_paraphrased_file_loads_exactly(fk_dir):
    items = load_fictional_knowledge(fk_dir / "fictional_knowledge_paraphrased.json")
    raw = json.loads((fk_dir / "fictional_knowledge_paraphrased.json").read_text(encoding="utf-8"))
    assert len(items) == 130 and [it.id for it in items] == list(range(130))
    assert all(len(it.paraphrases) == 9 for it in items[:40]) and all(not it.paraphrases for it in items[40:])
    for it, rec in zip(items, raw):
        assert it.context == rec["train_context"]
        for k in PROBE_KINDS:
            ps = it.probes_of(k)
            assert len(ps) == 5
            assert [p.input for p in ps] == rec[f"{k}_input"] and [p.target for p in ps] == rec[f"{k}_target"]
    assert any("\u2013" in it.context for it in items), "non-ASCII text (en dashes) must survive byte-identical"

def test_plain_file_and_directory(fk_dir):
    plain = load_fictional_knowledge(fk_dir / "fictional_knowledge.json")
    both = load_fictional_knowledge(fk_dir)  # the paraphrased file wins
    assert len(plain) == 130 and all(not it.paraphrases for it in plain)
    assert [len(it.paraphrases) for it in both[:40]] == [9] * 40
    assert [it.probes for it in plain] == [it.probes for it in both]
    validate_items(both)

def test_paper_scenarios(fk_items):
    sc = paper_scenarios(fk_items)
    assert sc == {"paraphrase": list(range(40)), "duplication": list(range(40, 80)),
                  "once": list(range(80, 120)), "control": list(range(120, 130))}
    with pytest.raises(ValueError, match="need 130 items, got 100"): paper_scenarios(fk_items[:100])

def test_paraphrase_scenario_needs_paraphrases(fk_dir):
    plain = load_fictional_knowledge(fk_dir / "fictional_knowledge.json")
    with pytest.raises(ValueError, match="item 0: paraphrases is empty"): paper_scenarios(plain)

def test_general_scenarios():
    items = items_from_records([_good() for _ in range(5)])
    assert scenarios(items, {"duplication": 3, "once": 2}) == {"duplication": [0, 1, 2], "once": [3, 4]}
    with pytest.raises(ValueError, match="need 6 items, got 5"): scenarios(items, {"duplication": 3, "once": 3})

# --- malformed inputs: each names item and field, and writes nothing ------------------------------
def _mut(field, value, item=1):
    def f(recs):
        recs[item][field] = value
        return recs
    return f

def _del(field, item=1):
    def f(recs):
        del recs[item][field]
        return recs
    return f

MALFORMED = {
    "missing train_context": (_del("train_context"), "item 1: missing field 'train_context'"),
    "missing hard_gen_target": (_del("hard_gen_target", 2), "item 2: missing field 'hard_gen_target'"),
    "empty target": (_mut("mem_target", ["ok", ""]), "item 1: mem_target[1] is empty"),
    "whitespace input": (_mut("gen_input", ["  ", "x"]), "item 1: gen_input[0] is empty"),
    "length mismatch": (_mut("gen_target", ["a"]), "item 1: gen_input has 2 entries but gen_target has 1"),
    "target not a list": (_mut("hard_gen_target", "Deimos"), "item 1: hard_gen_target must be a list, got str"),
    "number in list": (_mut("mem_input", ["a", 7]), "item 1: mem_input[1] must be a string, got int"),
    "context not a string": (_mut("train_context", ["a"]), "item 1: train_context must be a string, got list"),
    "empty probe list": (_mut("mem_input", []), "item 1: mem_input is empty"),
    "paraphrases not a list": (_mut("paraphrases", "text"), "item 1: paraphrases must be a list, got str"),
    "empty paraphrase": (_mut("paraphrases", ["fine", ""]), "item 1: paraphrases[1] is empty"),
    "item not an object": (lambda recs: recs[:2] + [["not", "a", "dict"]], "item 2: must be a JSON object, got list"),
}

@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_json_file(tmp_path, name):
    mutate, message = MALFORMED[name]
    path = tmp_path / "fk.json"
    path.write_text(json.dumps(mutate([_good() for _ in range(3)]), ensure_ascii=False), encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError) as e: load_fictional_knowledge(path)
    assert message in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written

def test_not_json_and_not_a_list(tmp_path):
    (tmp_path / "a.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"): load_fictional_knowledge(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps(_good()), encoding="utf-8")
    with pytest.raises(ValueError, match="must be a JSON list"): load_fictional_knowledge(tmp_path / "b.json")

def test_missing_paths_and_offline_hub(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError): load_fictional_knowledge(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="holds neither"): load_fictional_knowledge(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import time; t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match="offline mode"): load_fictional_knowledge("kaist-ai/fictional-knowledge")
    assert time.perf_counter() - t0 < 5  # fails fast, no network timeout

# --- properties ------------------------------------------------------------------------------------
text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())

@settings(max_examples=60, deadline=None)
@given(ctx=text, probes=st.lists(st.tuples(st.sampled_from(PROBE_KINDS), text, text), min_size=0, max_size=9),
       paras=st.lists(text, max_size=3))
def test_roundtrip_property(ctx, probes, paras):
    """Any item built from valid strings round-trips through the JSON record format, if it has every kind."""
    item = KnowledgeItem(0, ctx, paras, [Probe(*p) for p in probes])
    kinds = {p[0] for p in probes}
    if kinds == set(PROBE_KINDS):
        validate_items([item])
        back = KnowledgeItem.from_record(json.loads(json.dumps(item.to_record())), 0)
        assert [back.probes_of(k) for k in PROBE_KINDS] == [item.probes_of(k) for k in PROBE_KINDS]
        assert back.context == ctx and back.paraphrases == paras
    else:
        with pytest.raises(ValueError, match="item 0: .*is empty"): validate_items([item])
