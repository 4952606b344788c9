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

@pytest.mark.parametrize("name, paraphrases", [("fictional_knowledge_paraphrased.json", True), ("fictional_knowledge.json", False)])
def test_real_files_round_trip_byte_for_byte(fk_dir, name, paraphrases):
    items = load_fictional_knowledge(fk_dir / name)
    assert json.dumps([it.to_record(paraphrases=paraphrases) for it in items], indent=4).encode() == (fk_dir / name).read_bytes()

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
    items = items_from_records(_records(5))
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
    # duplicates name both items (a control equal to an injected item would be contaminated)
    "duplicate item": (lambda recs: recs + [copy.deepcopy(recs[0])], "item 3 duplicates item 0: identical train_context"),
    "duplicate passage": (lambda recs: recs[:2] + [dict(recs[2], train_context=recs[1]["train_context"])],
                          "item 2 duplicates item 1: identical train_context"),
    "duplicate probes": (lambda recs: recs[:2] + [dict(recs[0], train_context="A new passage.")], "item 2 duplicates item 0: identical probes"),
    # unencodable characters (a JSON escape gives a lone surrogate) in every kind of field
    "surrogate in target": (_mut("mem_target", ["ok", "Mar\ud800tian"]),
                            "item 1: mem_target[1] holds an unencodable character U+D800 at position 3 (a lone surrogate)"),
    "surrogate in context": (_mut("train_context", "Mars \udfff."), "item 1: train_context holds an unencodable character U+DFFF at position 5"),
    "surrogate in paraphrase": (_mut("paraphrases", ["fine", "\ud83d alone"]), "item 1: paraphrases[1] holds an unencodable character U+D83D"),
    # strings of invisible characters only
    "zero-width target": (_mut("gen_target", ["\u200b", "x"]), "item 1: gen_target[0] holds only invisible characters (U+200B)"),
    "invisible mix input": (_mut("hard_gen_input", ["x", "\u200d\ufeff\u00ad"]),
                            "item 1: hard_gen_input[1] holds only invisible characters (U+00AD, U+200D, U+FEFF)"),
    "separators context": (_mut("train_context", "\u2028\u3000\u200b"), "item 1: train_context holds only invisible characters"),
    "bidi marks paraphrase": (_mut("paraphrases", ["\u200e\u202e"]), "item 1: paraphrases[0] holds only invisible characters (U+200E, U+202E)"),
}

def _records(n=3):
    recs = [_good() for _ in range(n)]
    for i, r in enumerate(recs):   # distinct items: a passage and probes of their own
        r["train_context"] += f" Item {i}."
        r["mem_target"] = [t + f" {i}" for t in r["mem_target"]]
    return recs

@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_json_file(tmp_path, name):
    mutate, message = MALFORMED[name]
    path = tmp_path / "fk.json"
    path.write_text(json.dumps(mutate(_records())), encoding="utf-8")   # ASCII JSON: surrogates as \u escapes
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError) as e: load_fictional_knowledge(path)
    assert message in str(e.value) and str(path) in str(e.value)     # item, field and file
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    with pytest.raises(ValueError) as e2: items_from_records(mutate(_records()))   # the same rule without a file
    assert message in str(e2.value)

def test_good_records_load(tmp_path):
    path = tmp_path / "fk.json"
    recs = _records()
    recs[0]["mem_target"][0] = "Ellin\u00a0Vark \u200b"          # invisible characters inside a visible string are kept
    path.write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    items = load_fictional_knowledge(path)
    assert [it.to_record() for it in items] == [dict(r, paraphrases=r["paraphrases"]) for r in recs]

def test_duplicates_among_items():
    items = items_from_records(_records())
    twin = KnowledgeItem(7, items[0].context, [], list(items[1].probes))
    with pytest.raises(ValueError, match="item 7 duplicates item 0: identical train_context"): validate_items(items + [twin])
    twin = KnowledgeItem(7, "Another passage.", [], list(items[1].probes))
    with pytest.raises(ValueError, match="item 7 duplicates item 1: identical probes"): validate_items(items + [twin])

@pytest.mark.parametrize("name, content, message", [
    ("latin-1", "[{\"train_context\": \"Mart\xefan\"}]".encode("latin-1"), "not UTF-8 text (byte 0xef at offset 24)"),
    ("utf-16", json.dumps([_good()]).encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0)"),
    ("truncated", json.dumps([_good(), _good()]).encode()[:-40], "not valid JSON: Unterminated string starting at line 1"),
    ("truncated at a comma", json.dumps([_good(), _good()]).encode()[:-5] + b",", "(the file ends early: truncated?)"),
    ("empty", b"", "not valid JSON: Expecting value at line 1, column 1 (the file ends early: truncated?)"),
    ("broken", b'[{"train_context": "a",, }]', "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 24"),
    ("nested", b"[" * 100_000 + b"]" * 100_000, "not valid JSON: nested too deeply"),
])
def test_unreadable_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / f"{name}.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as e: load_fictional_knowledge(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    # in a directory, the file that was read is named
    d = tmp_path / f"dir_{name}"; d.mkdir(); (d / "fictional_knowledge.json").write_bytes(content)
    with pytest.raises(ValueError) as e: load_fictional_knowledge(d)
    assert str(e.value).startswith(f"{d / 'fictional_knowledge.json'}: ")

def test_not_json_and_not_a_list(tmp_path):
    (tmp_path / "a.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"): load_fictional_knowledge(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps(_good()), encoding="utf-8")
    with pytest.raises(ValueError, match=r"b\.json: dataset must be a JSON list"): load_fictional_knowledge(tmp_path / "b.json")

def test_missing_paths_and_offline_hub(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError): load_fictional_knowledge(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="holds neither"): load_fictional_knowledge(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import time; t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match="offline mode"): load_fictional_knowledge("kaist-ai/fictional-knowledge")
    assert time.perf_counter() - t0 < 5  # fails fast, no network timeout

# --- properties ------------------------------------------------------------------------------------
import unicodedata
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(
    lambda s: s.strip() and not all(unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") for c in s))

@settings(max_examples=60, deadline=None)
@given(s=st.text(min_size=1, max_size=12))
def test_string_rule_property(s):
    """A string is accepted iff it has a non-space, it encodes as UTF-8 and it has a visible character."""
    rec = dict(_good(), mem_target=[s, "x"])
    visible = not all(unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") for c in s)
    encodable = not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
    if s.strip() and visible and encodable: validate_record(rec, 0)
    else:
        with pytest.raises(ValueError, match=r"item 0: mem_target\[0\] (is empty|holds)"): validate_record(rec, 0)

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
