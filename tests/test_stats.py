"""ffka.stats: weighted pooling equals the repeated sample, cluster draws, intervals, contrasts, coverage, verdicts, findings."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st
from hypothesis.extra.numpy import arrays

from ffka.metrics import effectivity_table, filtered_mean, mean_effectivity, _nan_percentiles
from ffka.testing import SimpleLog
from ffka.stats import (DEFAULT_SCHEME, FINDING_COLUMNS, SCHEMES, Claim, Finding, Interval, bootstrap_effectivity, cluster_bootstrap,
                        contrast, draw_clusters, effectivity_contrast, equivalence_verdict, findings_frame, percentile_interval,
                        pool_tables, seed_heterogeneity, verdict, weighted_filtered_mean, weighted_percentiles)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
values = arrays(np.float64, st.integers(1, 25), elements=st.one_of(st.floats(-5, 5), st.just(np.nan)))


def wmean(y):
    return lambda w: (w * y).sum(-1) / w.sum(-1)


# ---------------------------------------------------------------- weighted pooling == the repeated sample

@FAST
@given(values, st.data(), st.sampled_from([None, 0.0, 1.5, 2.0]))
def test_weighted_pooling_equals_repeated_sample(x, data, k):
    w = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(x), max_size=len(x))), dtype=float)
    rep = np.repeat(x, w.astype(int))
    q1, q3 = weighted_percentiles(x, w)
    r1, r3 = _nan_percentiles(rep.reshape(1, -1))
    for a, b in ((q1, r1[0]), (q3, r3[0])):
        assert (np.isnan(a) and np.isnan(b)) or a == b          # bit-identical quartiles
    m, ref = weighted_filtered_mean(x, w, k), filtered_mean(rep, k)
    assert (np.isnan(m) and np.isnan(ref)) or abs(m - ref) <= 1e-12 * max(1, abs(ref))


def test_weighted_pooling_by_hand_and_batched():
    test = weighted_percentiles([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1])
    assert test == [1.75, 3.25]                                  # (n−1)·q = 0.75 and 2.25
    assert weighted_percentiles([5.0, 1.0], [0, 3]) == [1.0, 1.0]
    x = np.array([0.1, 0.2, 0.3, 0.2, 5.0])
    assert abs(weighted_filtered_mean(x, np.ones(5)) - 0.2) < 1e-15   # 5.0 is outside Q3 + 2·IQR
    assert abs(weighted_filtered_mean(x, np.ones(5), k=None) - 1.16) < 1e-15
    W = np.random.default_rng(0).integers(0, 3, (7, 5)).astype(float)
    batched = weighted_filtered_mean(x, W)
    assert np.allclose(batched, [weighted_filtered_mean(x, w) for w in W], equal_nan=True)


# ---------------------------------------------------------------- cluster draws

def test_draw_schemes_count_what_they_should():
    items = [0, 0, 1, 2, 0, 1, 0, 1, 2, 3]
    seeds = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]                       # seed sizes 3, 2, 4 clusters
    sizes = np.array([3, 3, 3, 2, 2, 4, 4, 4, 4])
    for sch in SCHEMES:
        d = draw_clusters(items, seeds, 2000, seed=1, scheme=sch)
        assert d.keys == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3)]
        assert abs(d.counts.mean() - 1) < 0.05                   # each cluster drawn once on average
        per_seed = np.stack([d.counts[:, [0, 1, 2]].sum(1), d.counts[:, [3, 4]].sum(1), d.counts[:, 5:].sum(1)], 1)
        if sch == "items": assert (per_seed == [3, 2, 4]).all()
        if sch == "seeds":
            assert (d.counts[:, 0] == d.counts[:, 2]).all() and set((d.counts[:, [0, 3, 5]].sum(1))) == {3}
        if sch == "two-stage":                                    # a seed drawn c times contributes c·m item draws
            c = per_seed / np.array([3, 2, 4])
            assert np.allclose(c, np.round(c)) and (c.sum(1) == 3).all()
    assert DEFAULT_SCHEME == "two-stage"
    with pytest.raises(ValueError, match="not one of"):
        draw_clusters(items, seeds, 5, scheme="probes")
    with pytest.raises(ValueError, match="labels but inner"):
        draw_clusters(items, seeds[:-1], 5)


def test_items_of_different_seeds_are_different_clusters():
    d = draw_clusters([1, 1], [0, 1], 10, scheme="items")
    assert d.keys == [(0, 1), (1, 1)] and (d.counts == 1).all()   # one item per seed: always drawn itself


@FAST
@given(st.lists(st.integers(0, 5), min_size=2, max_size=30), st.integers(0, 1000))
def test_interval_invariant_to_relabelling_clusters(labels, seed):
    y = np.random.default_rng(seed).standard_normal(len(labels))
    relabel = {v: f"item-{(7 * v + 3) % 11}" for v in set(labels)}   # a bijection; first appearances keep their order
    a = cluster_bootstrap(wmean(y), labels, n_boot=100, seed=seed)
    b = cluster_bootstrap(wmean(y), [relabel[v] for v in labels], n_boot=100, seed=seed)
    assert a == b


@FAST
@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(-3, 3)), st.sampled_from(SCHEMES))
def test_single_cluster_gives_a_degenerate_interval(y, scheme):
    iv = cluster_bootstrap(lambda w: weighted_filtered_mean(y, w), np.zeros(len(y)), np.zeros(len(y)), n_boot=30, scheme=scheme)
    tol = 1e-12 * max(1, abs(iv.value))
    assert abs(iv.lo - iv.value) <= tol and abs(iv.hi - iv.value) <= tol and iv.se <= tol and iv.n_clusters == 1


# ---------------------------------------------------------------- intervals

def test_percentile_interval_by_hand():
    iv = percentile_interval(2.0, np.arange(1.0, 102.0), level=0.9)
    assert abs(iv.lo - 6.0) < 1e-12 and abs(iv.hi - 96.0) < 1e-12 and iv.n_boot == 101
    assert set(iv.as_dict()) == {"value", "lo", "hi", "se", "level", "n_clusters", "n_boot"}
    iv = percentile_interval(1.0, [1.0, 2.0, np.inf, np.nan])    # NaN dropped, inf kept
    assert (iv.lo, iv.hi, iv.se, iv.n_boot) == (1.05, np.inf, np.inf, 3)
    assert np.isnan(iv.samples[3])                                # samples stay in draw order
    assert np.isnan(percentile_interval(0.0, []).lo)
    with pytest.raises(ValueError, match="level"):
        percentile_interval(0.0, [1.0], level=1.5)


@FAST
@given(arrays(np.float64, st.integers(2, 200), elements=st.floats(-1e3, 1e3)), st.floats(0.5, 0.98))
def test_percentile_intervals_are_ordered_and_nested(s, level):
    lo, hi = percentile_interval(0.0, s, level), percentile_interval(0.0, s, min(0.99, level + 0.01))
    assert s.min() <= lo.lo <= lo.hi <= s.max()
    assert hi.lo <= lo.lo and lo.hi <= hi.hi


def test_cluster_bootstrap_se_by_hand():
    y = np.array([1.0, 1.2, 3.0, 3.4, 2.0, 2.2])
    iv = cluster_bootstrap(wmean(y), [1, 1, 2, 2, 3, 3], n_boot=20000, seed=0)
    # three equal clusters with means 1.1, 3.2, 2.1: bootstrap variance of their mean = (n−1)/n · s² / n
    assert abs(iv.se - np.sqrt(2 / 3) * np.std([1.1, 3.2, 2.1], ddof=1) / np.sqrt(3)) < 0.01
    assert abs(iv.value - y.mean()) < 1e-15


# ---------------------------------------------------------------- contrasts

def test_paired_contrast_cancels_shared_item_effects():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 12)
    ya, yb = base + 0.5 + 0.01 * rng.standard_normal(12), base
    paired = contrast(wmean(ya), range(12), wmean(yb), range(12), n_boot=2000)
    indep = contrast(wmean(ya), range(12), wmean(yb), range(12), n_boot=2000, independent=True)
    assert paired.lo > 0.45 and paired.hi < 0.55 and indep.hi - indep.lo > 10 * (paired.hi - paired.lo)
    assert indep.n_clusters == 24 and paired.n_clusters == 12
    r = contrast(wmean(ya + 10), range(12), wmean(yb + 10), range(12), op="relative", n_boot=200)
    assert abs(r.value - ((ya + 10).mean() / (yb + 10).mean() - 1)) < 1e-12
    with pytest.raises(ValueError, match="not one of"):
        contrast(wmean(ya), range(12), wmean(yb), range(12), op="product")


def test_contrast_of_a_setting_with_itself_is_exactly_zero():
    y = np.random.default_rng(1).standard_normal(10)
    iv = contrast(wmean(y), np.arange(10) // 2, wmean(y), np.arange(10) // 2, n_boot=100)
    assert iv.value == 0 and iv.lo == 0 and iv.hi == 0


# ---------------------------------------------------------------- coverage on simulated data

def _pooled(S, seed_sd, rng, n_items=8, n_probes=5):
    u, v = seed_sd * rng.standard_normal(S), 0.1 * rng.standard_normal((S, n_items))
    y = 0.5 + u[:, None, None] + v[:, :, None] + 0.1 * rng.standard_normal((S, n_items, n_probes))
    seeds, items = np.meshgrid(np.arange(S), np.repeat(np.arange(n_items), n_probes), indexing="ij")
    return y.ravel(), items.ravel(), seeds.ravel()


def test_coverage_of_the_pooled_mean():
    """150 simulated datasets (3 seeds × 8 items × 5 probes), 200 replicates each. Measured when written (300 datasets,
    400 replicates): no seed effect: items 0.91, two-stage 0.96; seed sd 0.1: items 0.47, two-stage 0.77 (5 seeds: 0.87)."""
    hits = {(sd, sch): 0 for sd in (0.0, 0.1) for sch in ("items", "two-stage")}
    n = 150
    for d in range(n):
        for sd in (0.0, 0.1):
            y, items, seeds = _pooled(3, sd, np.random.default_rng(d))
            for sch in ("items", "two-stage"):
                iv = cluster_bootstrap(lambda w: weighted_filtered_mean(y, w), items, seeds, 200, seed=d, scheme=sch)
                hits[sd, sch] += iv.lo <= 0.5 <= iv.hi
    cov = {k: v / n for k, v in hits.items()}
    assert cov[0.0, "items"] >= 0.85 and cov[0.0, "two-stage"] >= 0.90, cov
    assert cov[0.1, "items"] < 0.65 and cov[0.1, "two-stage"] > cov[0.1, "items"] + 0.15, cov


# ---------------------------------------------------------------- pooled effectivity

def _log(seed, n_items=5, offset_sd=0.05, fail=False):
    rng = np.random.default_rng(seed)
    steps, inj = np.arange(41), [0, 10, 20]
    u = offset_sd * rng.standard_normal()
    cols, rows, injections = [], [], {}
    for s_i, scen in enumerate(("duplication", "paraphrase", "control")):
        for j in range(n_items):
            item = 10 * s_i + j
            if scen != "control": injections[item] = inj
            g = 0.3 + (0.1 if scen == "duplication" else 0) + u + 0.05 * rng.standard_normal()
            for kind, depth in (("mem", 1.0), ("gen", 0.5)):
                for p in range(3):
                    l = -3 + 0.02 * rng.standard_normal(len(steps))
                    if scen != "control":
                        for t in inj: l = l + np.where(steps > t, depth * g * 0.5 ** np.maximum(steps - t - 1, 0), 0)
                    if fail and p == 0: l = l - np.where(steps > 0, 0.05 * steps, 0)
                    cols.append(l); rows.append(dict(item_id=item, kind=kind, index=p, scenario=scen))
    return SimpleLog(steps, np.stack(cols, 1), pd.DataFrame(rows), injections, meta=dict(seed=seed, protocol=dict(window=5)))


@pytest.mark.parametrize("k,exclude,col", [(2.0, False, "effectivity"), (1.5, True, "effectivity"), (None, False, "effectivity_corrected")])
def test_bootstrap_effectivity_reproduces_mean_effectivity_exactly(k, exclude, col):
    tabs = [effectivity_table(_log(s, fail=True)) for s in range(3)]
    be = bootstrap_effectivity(tabs, k=k, exclude_failures=exclude, col=col, n_boot=100)
    me = mean_effectivity(pool_tables(tabs), k=k, exclude_failures=exclude)
    assert list(be[["scenario", "kind"]].itertuples(index=False)) == list(me[["scenario", "kind"]].itertuples(index=False))
    assert (be[col].to_numpy() == me[col].to_numpy()).all()                      # bit for bit
    assert set(be.n_seeds) == {3} and set(be.n_clusters) == {15} and (be.lo <= be.hi).all()
    one = bootstrap_effectivity(tabs[0], k=k, exclude_failures=exclude, col=col, n_boot=20)
    assert (one[col].to_numpy() == mean_effectivity(tabs[0], k=k, exclude_failures=exclude)[col].to_numpy()).all()


def test_pool_tables_seed_labels():
    t = effectivity_table(_log(0))
    assert set(pool_tables([t, t]).seed) == {0, 1} and set(pool_tables({7: t}).seed) == {7}
    assert set(pool_tables(t.assign(seed=5)).seed) == {5}
    with pytest.raises(ValueError, match="no tables"):
        pool_tables([])


def test_effectivity_contrasts():
    tabs = {s: effectivity_table(_log(s)) for s in range(4)}
    dp = effectivity_contrast(tabs, dict(scenario="duplication", kind="mem"), dict(scenario="paraphrase", kind="mem"), n_boot=400)
    e = mean_effectivity(pool_tables(tabs)).set_index(["scenario", "kind"]).effectivity
    assert dp.value == e["duplication", "mem"] - e["paraphrase", "mem"] and 0 < dp.lo and dp.n_clusters == 40
    mg = effectivity_contrast(tabs, dict(scenario="paraphrase", kind="mem"), dict(scenario="paraphrase", kind="gen"), op="ratio", n_boot=400)
    assert abs(mg.value - 2.0) < 0.1 and mg.lo > 1.5 and mg.n_clusters == 20                  # the same items: paired
    with pytest.raises(ValueError, match="matches no rows"):
        effectivity_contrast(tabs, dict(scenario="once"), dict(scenario="paraphrase"))


# ---------------------------------------------------------------- verdicts

bounds = st.tuples(st.floats(-10, 10), st.floats(0, 10)).map(lambda p: (p[0], p[0] + p[1]))


def test_verdicts_by_hand():
    assert [verdict(b) for b in [(0.1, 0.3), (-0.3, -0.1), (-0.1, 0.2), (0.0, 0.2), (np.nan, np.nan)]] == \
        ["holds", "does not hold", "inconclusive", "inconclusive", "inconclusive"]
    assert verdict(Interval(1, 0.5, 2, 0.3, 0.95, 8, 100), null=0.4) == "holds"
    assert [equivalence_verdict(b, 0.1) for b in [(-0.05, 0.08), (0.1, 0.3), (-0.05, 0.2), (-0.3, 0.3)]] == \
        ["holds", "does not hold", "inconclusive", "inconclusive"]
    with pytest.raises(ValueError, match="direction"):
        verdict((0, 1), direction="both")
    with pytest.raises(ValueError, match="margin"):
        equivalence_verdict((0, 1), -1)


@FAST
@given(bounds, st.floats(-5, 5))
def test_verdict_symmetry_under_sign_flip(b, null):
    lo, hi = b
    flip = {"holds": "does not hold", "does not hold": "holds", "inconclusive": "inconclusive"}
    assert verdict((lo, hi), null, "greater") == verdict((-hi, -lo), -null, "less")
    assert verdict((lo, hi), null, "less") == flip[verdict((lo, hi), null, "greater")]
    assert equivalence_verdict((lo, hi), 0.5, null) == equivalence_verdict((-hi, -lo), 0.5, -null)


@FAST
@given(bounds, st.floats(0.01, 5))
def test_equivalence_holds_only_inside_and_never_with_a_directional_holds(b, m):
    lo, hi = b
    v = equivalence_verdict(b, m)
    assert (v == "holds") == (-m < lo and hi < m)
    if v == "holds": assert verdict(b, m, "greater") != "holds" and verdict(b, -m, "less") != "holds"


# ---------------------------------------------------------------- claims and findings

def test_claims_decide_and_the_findings_table():
    c1 = Claim("e02", "Duplication beats paraphrase", "E_dup − E_para (mem)")
    c2 = Claim("e02", "No growth from early to late", "(E_late − E_early)/E_early", direction="equivalent", margin=0.1)
    c3 = Claim("e03", "Composition forgets most slowly", "a_comp − a_mem", direction="less", level=0.9)
    assert c1.test == "95% CI of E_dup − E_para (mem) > 0"
    assert c2.test == "95% CI of (E_late − E_early)/E_early inside (-0.1, 0.1)"
    assert c3.test == "90% CI of a_comp − a_mem < 0"
    f = [c1.decide(Interval(0.2, 0.1, 0.3, 0.05, 0.95, 40, 1000)), c2.decide(dict(value=0.02, lo=-0.2, hi=0.25)),
         c3.decide(Interval(-0.1, -0.2, -0.01, 0.05, 0.9, 40, 1000))]
    ff = findings_frame(f)
    assert tuple(ff.columns) == FINDING_COLUMNS == ("experiment", "claim", "quantity", "value", "lo", "hi", "level", "verdict", "test")
    assert list(ff.verdict) == ["holds", "inconclusive", "holds"] and list(ff.level) == [0.95, 0.95, 0.9]
    with pytest.raises(ValueError, match="declared level 0.9"):
        c3.decide(Interval(0, -1, 1, 1, 0.95, 2, 10))
    with pytest.raises(ValueError, match="margin is needed"):
        Claim("x", "y", "z", direction="less", margin=0.1)
    with pytest.raises(ValueError, match="verdict 'maybe'"):
        findings_frame([Finding("x", "y", "z", 0, 0, 0, 0.95, "maybe", "t")])
    assert list(findings_frame([]).columns) == list(FINDING_COLUMNS)


# ---------------------------------------------------------------- strata and contrasts across seeds

def test_strata_keep_every_cell_and_seeds_are_drawn_among_like_seeds():
    items = list(range(12))
    seeds = [0] * 4 + [1] * 4 + [2] * 4
    strata = ["dup", "dup", "para", "para"] * 2 + ["dup"] * 4        # seed 2 holds only dup items
    for sch in ("items", "two-stage"):
        C = draw_clusters(items, seeds, 500, seed=3, scheme=sch, strata=strata).counts
        if sch == "items":
            assert (C[:, [0, 1]].sum(1) == 2).all() and (C[:, [2, 3]].sum(1) == 2).all() and (C[:, 8:].sum(1) == 4).all()
        else:                                                        # seed 2 is alone in its kind: always drawn once
            assert (C[:, 8:].sum(1) == 4).all() and set(C[:, :8].sum(1)) == {8}
    with pytest.raises(ValueError, match="strata: 3 labels"):
        draw_clusters([1, 2], strata=["a", "b", "c"])


def test_contrast_of_runs_with_disjoint_seeds_never_loses_a_setting():
    y = np.arange(12.0)
    iv = contrast(wmean(y[:6]), [0, 1, 2] * 2, wmean(y[6:]), [0, 1, 2] * 2, outer_a=[0] * 3 + [1] * 3, outer_b=[5] * 3 + [6] * 3,
                  n_boot=300, scheme="two-stage")
    assert iv.n_boot == 300 and np.isfinite(iv.samples).all() and iv.value == -6


def test_coverage_of_a_within_run_difference_with_seed_offsets():
    """dup and para items of the same 3 runs share each run's offset (sd 0.1): paired two-stage resampling lets it cancel."""
    hits, n = 0, 100
    for d in range(n):
        rng = np.random.default_rng(d)
        u = 0.1 * rng.standard_normal(3)
        ya, yb = (0.5 + dv + u[:, None] + 0.1 * rng.standard_normal((3, 8)) for dv in (0.1, 0.0))
        seeds, items = np.repeat(np.arange(3), 8), np.tile(np.arange(8), 3)
        iv = contrast(wmean(ya.ravel()), items, wmean(yb.ravel()), items + 100, seeds, seeds, n_boot=200, seed=d)
        hits += iv.lo <= 0.1 <= iv.hi
    assert hits / n >= 0.88, hits / n


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.sampled_from([None, 1.5, 2.0]), st.booleans())
def test_bootstrap_effectivity_point_is_mean_effectivity_on_random_tables(seed, k, exclude):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    tab = pd.DataFrame(dict(scenario=rng.choice(["duplication", "paraphrase", "control"], n), kind=rng.choice(["mem", "gen"], n),
                            item_id=rng.integers(0, 6, n), injection_step=rng.choice([0, 10], n), seed=rng.integers(0, 3, n),
                            effectivity=np.where(rng.random(n) < 0.1, np.nan, rng.normal(0.2, 0.3, n))))
    tab["effectivity_corrected"] = tab.effectivity - 0.01
    tab["item_id"] = tab.item_id + 10 * tab.scenario.map({"duplication": 0, "paraphrase": 1, "control": 2})   # an item has one scenario
    be = bootstrap_effectivity(tab, k=k, exclude_failures=exclude, n_boot=20, seed=seed)
    me = mean_effectivity(tab, k=k, exclude_failures=exclude)
    assert np.array_equal(be.effectivity.to_numpy(), me.effectivity.to_numpy(), equal_nan=True)


@FAST
@given(arrays(np.float64, st.integers(1, 15), elements=st.floats(-3, 3)), st.integers(0, 4), st.sampled_from(SCHEMES))
def test_a_setting_contrasted_with_itself_is_exactly_zero(y, n_groups, scheme):
    labels = np.arange(len(y)) % (n_groups + 1)
    seeds = np.arange(len(y)) % 2
    iv = contrast(wmean(y), labels, wmean(y), labels, seeds, seeds, n_boot=30, scheme=scheme)
    assert iv.value == 0 and (iv.samples == 0).all()


# ---------------------------------------------------------------- do the seeds agree? (Cochran's Q, DerSimonian–Laird τ)

def _naive_q(v, s):
    "Q written out term by term, as a textbook does."
    m = sum(x / e ** 2 for x, e in zip(v, s)) / sum(1 / e ** 2 for e in s)
    return sum(((x - m) / e) ** 2 for x, e in zip(v, s))


@FAST
@given(st.lists(st.floats(-2, 2), min_size=2, max_size=8), st.data(), st.floats(-3, 3), st.floats(0.1, 10))
def test_seed_heterogeneity_properties(v, data, shift, scale):
    s = data.draw(st.lists(st.floats(0.01, 1), min_size=len(v), max_size=len(v)))
    h = seed_heterogeneity(v, s)
    assert h["Q"] >= 0 and h["tau"] >= 0 and 0 <= h["I2"] < 1 and 0 <= h["p"] <= 1 and h["df"] == len(v) - 1
    assert np.isclose(h["Q"], _naive_q(v, s), rtol=1e-9, atol=1e-9)
    hs = seed_heterogeneity(np.array(v) + shift, s)                       # a common shift changes nothing but the mean
    assert np.isclose(hs["Q"], h["Q"], rtol=1e-6, atol=1e-6) and np.isclose(hs["mean"], h["mean"] + shift, atol=1e-9)
    hc = seed_heterogeneity(np.array(v) * scale, np.array(s) * scale)      # units cancel in Q; τ scales with them
    assert np.isclose(hc["Q"], h["Q"], rtol=1e-6, atol=1e-6) and np.isclose(hc["tau"], h["tau"] * scale, rtol=1e-6, atol=1e-9)


def test_seed_heterogeneity_is_calibrated_and_sees_seed_variation():
    """Three seeds, within-seed se 0.015: with no seed effect p < 0.05 in about 5% of 4000 simulated runs;
    with a between-seed sd of 0.05 (test_fit's hard case) in most of them, and τ estimates it roughly."""
    rng = np.random.default_rng(7)
    se = np.full(3, 0.015)
    p0 = np.array([seed_heterogeneity(0.3 + rng.normal(0, se), se)["p"] for _ in range(4000)])
    assert 0.035 < (p0 < 0.05).mean() < 0.065, (p0 < 0.05).mean()
    h1 = [seed_heterogeneity(0.3 + rng.normal(0, 0.05, 3) + rng.normal(0, se), se) for _ in range(2000)]
    assert np.mean([h["p"] < 0.05 for h in h1]) > 0.6
    assert 0.03 < np.median([h["tau"] for h in h1]) < 0.07


def test_seed_heterogeneity_bad_input_names_the_seed():
    with pytest.raises(ValueError, match="seed 2 has standard error -0.1"): seed_heterogeneity([1, 2, 3], [1, 1, -0.1])
    with pytest.raises(ValueError, match="2 standard errors for 3 values"): seed_heterogeneity([1, 2, 3], [1, 1])
    h = seed_heterogeneity([1.0, np.nan, np.nan], [0.1, 0.1, np.nan])
    assert h["n_seeds"] == 1 and np.isnan(h["Q"]) and h["mean"] == 1.0
    h = seed_heterogeneity([1.0, 1.2, 0.9], [0.1, 0.0, 0.1])                # a degenerate bootstrap: no test rather than Q = inf
    assert h["n_seeds"] == 3 and np.isnan(h["Q"]) and np.isnan(h["p"]) and np.isnan(h["tau"])
