"""ffka.phrasings: the world's tables keep the promises the generator relies on; each broken promise is named."""
import re
import pytest

from ffka.phrasings import (COMPOSED, COMPOSITIONS, FILLERS, INVERSE, ITEM_FACTS, ITEM_HARD_GEN, ITEM_ROLES, RELATION_KINDS,
                            RELATIONS, TEMPLATE_WORDS, TEMPLATES, check_phrasings)


def test_shipped_tables_are_consistent():
    check_phrasings()
    assert TEMPLATES == {**RELATIONS, **COMPOSED} and not set(RELATIONS) & set(COMPOSED)
    assert all(INVERSE[INVERSE[r]] == r for r in INVERSE)
    assert set(COMPOSITIONS) == set(COMPOSED)


def test_every_template_is_a_cloze_sentence():
    for rel, ts in TEMPLATES.items():
        assert len(ts) >= 5 and len(set(ts)) == len(ts), rel
        for t in ts:
            assert t.endswith(" {o}.") and t.count("{o}") == 1 and t.count("{s}") == 1, t
            assert "." not in t[:-1], t                       # the sentence splitter splits on ". "
    for ts in FILLERS.values():
        assert all(t.count("{s}") == 1 and "{o}" not in t for t in ts)


def test_item_layout():
    assert len(ITEM_FACTS) == 6 and len(ITEM_HARD_GEN) == 8
    objects = [o for _, _, o in ITEM_FACTS]
    assert len(set(objects)) == 6 and "P" not in objects      # six facts about new names around P
    for rel, s, o in ITEM_HARD_GEN:
        assert not any({s, o} == {a, b} for _, a, b in ITEM_FACTS)   # never one fact apart
        assert RELATION_KINDS[COMPOSITIONS[rel][0]][0] == ITEM_ROLES[s] and RELATION_KINDS[COMPOSITIONS[rel][-1]][1] == ITEM_ROLES[o]


def test_template_words_cover_prose():
    words = {w.lower() for ts in TEMPLATES.values() for t in ts for w in re.findall(r"[A-Za-z]+", t)}
    assert words <= TEMPLATE_WORDS and {"lamp", "society", "university", "engineer"} <= TEMPLATE_WORDS


BROKEN = {
    "too few phrasings": (dict(relations={**RELATIONS, "wrote": RELATIONS["wrote"][:4]}), "RELATIONS['wrote']: needs >= 5 distinct phrasings"),
    "repeated phrasing": (dict(relations={**RELATIONS, "wrote": RELATIONS["wrote"][:4] + RELATIONS["wrote"][:1]}),
                          "RELATIONS['wrote']: needs >= 5 distinct phrasings, has 4"),
    "no final object": (dict(composed={**COMPOSED, "founder_book": COMPOSED["founder_book"][:4] + ("The founder of {s} wrote {o}",)}),
                        "COMPOSED['founder_book']: 'The founder of {s} wrote {o}' must end with ' {o}.'"),
    "two subjects": (dict(relations={**RELATIONS, "married": RELATIONS["married"][:4] + ("{s} and {s} married {o}.",)}),
                     "must hold '{s}' exactly once"),
    "dot inside": (dict(relations={**RELATIONS, "married": RELATIONS["married"][:4] + ("{s}. Then married {o}.",)}), "holds a '.'"),
    "filler with object": (dict(fillers={**FILLERS, "book": ("{s} is about {o}.",)}), "FILLERS['book']: filler '{s} is about {o}.'"),
    "kinds missing": (dict(kinds={k: v for k, v in RELATION_KINDS.items() if k != "wrote"}), "RELATION_KINDS: keys differ from RELATIONS by ['wrote']"),
    "bad inverse": (dict(inverse={**INVERSE, "wrote": "founded_by", "founded_by": "wrote"}), "INVERSE['founded'] = 'founded_by' is not an inverse of it"),
    "broken chain": (dict(compositions={**COMPOSITIONS, "founder_book": ("founded", "wrote")}),
                     "COMPOSITIONS['founder_book']: 'founded' ends at type 'org', 'wrote' starts at type 'person'"),
    "one-hop chain": (dict(compositions={**COMPOSITIONS, "founder_book": ("wrote",)}), "COMPOSITIONS['founder_book']: needs a chain of >= 2"),
    "item fact type": (dict(item_facts=ITEM_FACTS[:5] + (("wrote", "O", "W"),)), "ITEM_FACTS: ('wrote', 'O', 'W') does not fit"),
    "hard_gen one fact apart": (dict(item_hard_gen=ITEM_HARD_GEN + (("founder_book", "P", "W"),)), "ITEM_HARD_GEN['founder_book']: 'P' and 'W' are one fact apart"),
    "hard_gen chain misses": (dict(item_hard_gen=ITEM_HARD_GEN + (("founder_product", "S", "X"),)),
                              "ITEM_HARD_GEN['founder_product']: the chain ('founded', 'known_for') does not lead from 'S' to 'X'"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_tables_are_named(name):
    kwargs, message = BROKEN[name]
    with pytest.raises(ValueError) as e: check_phrasings(**kwargs)
    assert message in str(e.value)
