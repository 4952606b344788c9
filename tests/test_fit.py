"""ffka.law / ffka.fit: agreement with the official trend-line fit (np.polyfit), the vectorised bootstrap against the naive loop,
coverage of the item (and seed) bootstrap on simulated data with item-level variation, law comparison, fit rows and tables."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st
from hypothesis.extra.numpy import arrays

sys.path.insert(0, str(Path(__file__).parent))
import official_reference as ref
from ffka.fit import (FIT_COLUMNS, BootstrapFit, ForgettingFit, binned_retainability, bootstrap_forgetting, bootstrap_law_comparison,
                      compare_laws, fit_forgetting, fit_law, fit_row, forgetting_contrast, forgetting_coverage, forgetting_table,
                      mean_curve, pooled_retainability, simulate_retainability, _ols_rows, _replicate_curves)
from ffka.law import _ols
from ffka.metrics import IQR_K, mean_retainability, retainability_matrix
from ffka.testing import SimpleLog
from ffka.stats import draw_clusters

TOL = 1e-9


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(3, 400), st.floats(-1, 1), st.floats(-2, 2), st.floats(1e-4, 0.5), st.integers(0, 2**32 - 1))
def test_ols_equals_polyfit_and_official_formulas(n, a, b, noise, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1)
    y = b - a * np.log10(t) + noise * rng.standard_normal(n)
    f = fit_forgetting(t, y)
    m, c = np.polyfit(np.log10(t), y, 1)
    o = ref.plot_trendline(t, y)
    assert abs(f.a + m) < TOL and abs(f.b - c) < TOL
    assert abs(f.a - o["a"]) < TOL and abs(f.a_stderr - o["se"]) < TOL and abs(f.r2 - o["r2"]) < TOL
    if abs(o["a"]) > 1e-4:   # -b/m is ill-conditioned as m -> 0 (both sides round m at 1e-16; the ratio amplifies it)
        assert abs(f.x_intercept_log10_steps - o["x_intercept"]) < TOL * max(1, abs(o["x_intercept"]))
    assert f.n == n


def test_official_curve_fit_including_its_quirks():
    rng = np.random.default_rng(0)
    t = np.arange(0, 1551)
    curve = 100 * (0.8 - 0.2 * np.log10(np.maximum(t, 1)) + 0.01 * rng.standard_normal(len(t)))
    o = ref.fit_curve(list(curve))                          # drops t = 0, /100
    f = fit_forgetting(t, curve / 100)                      # t < 1 dropped here too
    for mine, key in [(f.a, "a"), (f.a_stderr, "se"), (f.r2, "r2"), (f.x_intercept_log10_steps, "x_intercept"), (f.b, "intercept")]:
        assert abs(mine - o[key]) < TOL, key
    o = ref.fit_curve(list(-curve))                         # the official sign flip when y_1 < 0
    f = fit_forgetting(t, -curve / 100, flip_if_first_negative=True)
    assert abs(f.a - o["a"]) < TOL and abs(f.x_intercept_log10_steps - o["x_intercept"]) < TOL
    assert abs(fit_forgetting(t, -curve / 100).a + o["a"]) < TOL   # default: no flip


def test_threshold_units_and_lmfit():
    t = np.arange(1, 1001)
    f = fit_forgetting(t, 1.0 - 0.25 * np.log10(t) + 1e-3 * np.sin(t), tokens_per_step=128 * 2048)
    assert abs(f.x_intercept_log10_steps - 4) < 0.01
    assert abs(f.threshold_steps - 10 ** f.x_intercept_log10_steps) < 1e-6 * f.threshold_steps
    assert abs(f.threshold_log10_tokens - f.x_intercept_log10_steps - 5.4185) < 1e-4   # log10(128·2048)
    assert abs(np.log10(f.threshold_tokens) - f.threshold_log10_tokens) < 1e-12
    assert abs(f.result.params["a"].value - f.a) < 1e-7 and abs(f.result.params["a"].stderr / f.a_stderr - 1) < 1e-5
    lo, hi = f.a_ci
    assert lo < f.a < hi and abs((hi - lo) / 2 / f.a_stderr - 1.962) < 0.01
    ci = f.lmfit_ci(sigmas=[1, 2])
    assert ci["a"][0][1] < f.a < ci["a"][-1][1]
    assert np.isnan(fit_forgetting(t, np.full(1000, 0.3)).threshold_tokens)


def test_weighted_fit():
    rng = np.random.default_rng(0)
    t = np.arange(1, 60)
    y = 0.9 - 0.2 * np.log10(t) + 0.05 * rng.standard_normal(len(t))
    f, fw = fit_forgetting(t, y), fit_forgetting(t, y, weights=np.full(len(t), 3.0))
    for key in ("a", "b", "a_stderr", "r2", "x_intercept_log10_steps"):
        assert abs(getattr(f, key) - getattr(fw, key)) < 1e-12, key
    w = rng.integers(1, 5, len(t))                                   # frequency weights = repeated points
    fr, fwr = fit_forgetting(np.repeat(t, w), np.repeat(y, w)), fit_forgetting(t, y, weights=w)
    assert abs(fr.a - fwr.a) < 1e-12 and abs(fr.b - fwr.b) < 1e-12 and abs(fr.r2 - fwr.r2) < 1e-12
    assert abs(fwr.result.params["a"].value - fwr.a) < 1e-7
    lo, hi = fwr.band([1, 10])
    assert np.all(lo < fwr.predict([1, 10])) and np.all(fwr.predict([1, 10]) < hi)
    with pytest.raises(ValueError, match="weights"):
        fit_forgetting(t, y, weights=-np.ones(len(t)))


def test_edge_cases():
    with pytest.raises(ValueError, match="at least 2"):
        fit_forgetting([0, 5], [1.0, np.nan])
    with pytest.raises(ValueError, match="all t are equal"):
        fit_forgetting([3, 3, 3], [1.0, 0.9, 0.8])
    with pytest.raises(ValueError, match="shapes differ"):
        fit_forgetting([1, 2, 3], [1.0, 0.9])
    f = fit_forgetting([1, 2, 5, np.nan, 10], [1.0, 0.9, np.nan, 0.3, 0.7])   # NaN points dropped
    assert f.n == 3
    assert isinstance(f, ForgettingFit)




# ---------------------------------------------------------------- simulated data with items (and seeds)

T60 = np.unique(np.round(np.logspace(0, np.log10(1500), 60)).astype(int))


def test_simulation_has_item_structure():
    R, items, seeds = simulate_retainability(T60, n_items=6, n_probes=4, n_seeds=2, seed=0)
    assert R.shape == (len(T60), 48) and list(items[:5]) == [0, 0, 0, 0, 1] and list(seeds[[0, 24]]) == [0, 1]
    x = np.log10(T60)
    d = R - np.array([np.polyval(np.polyfit(x, R[:, j], 1), x) for j in range(R.shape[1])]).T   # residuals of each probe's own line
    within = np.mean([np.corrcoef(d[:, 4 * i], d[:, 4 * i + 1])[0, 1] for i in range(12)])
    between = np.mean([np.corrcoef(d[:, 4 * i], d[:, 4 * i + 4])[0, 1] for i in range(11)])
    assert within > 0.6 and abs(between) < 0.3, (within, between)  # probes of an item share their noise
    R0, *_ = simulate_retainability(T60, 100, 2, item_slope_sd=0, item_intercept_sd=0, item_noise=0, probe_noise=1e-3)
    assert abs(fit_forgetting(T60, R0.mean(1)).a - 0.2) < 1e-3 and abs(fit_forgetting(T60, R0.mean(1)).b - 0.9) < 1e-3


# ---------------------------------------------------------------- the vectorised bootstrap == the naive loop it replaces

def _naive(t, R, W, k, n_bins):
    "Repeat column j W[b, j] times, recompute the curve, refit: the loop the weights replace."
    out = []
    for w in W.astype(int):
        tc, yc, wc = mean_curve(t, R[:, np.repeat(np.arange(R.shape[1]), w)], k, n_bins)
        ok = np.isfinite(yc)
        out.append(_ols(np.log10(tc[ok]), yc[ok], None if wc is None else wc[ok])[:2] if ok.sum() >= 2 else (np.nan, np.nan))
    return np.array(out).T


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.sampled_from([None, 6, 15]), st.sampled_from([None, 1.5, 2.0]), st.floats(0, 0.8))
def test_vectorised_replicates_equal_the_naive_loop(seed, n_bins, k, gaps):
    rng = np.random.default_rng(seed)
    t = np.unique(rng.integers(1, 400, rng.integers(5, 60)))
    R, items, _ = simulate_retainability(t, int(rng.integers(1, 6)), int(rng.integers(1, 4)), seed=seed)
    R[rng.random(R.shape) < gaps] = np.nan
    W = draw_clusters(items, n_boot=8, seed=seed).weights(items)
    m, c = _ols_rows(*_replicate_curves(t.astype(float), R, W, k, n_bins))
    mn, cn = _naive(t.astype(float), R, W, k, n_bins)
    assert np.allclose(m, mn, rtol=1e-9, atol=1e-12, equal_nan=True) and np.allclose(c, cn, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_large_dense_matrices_loop_over_replicates_and_agree():
    from ffka.fit import DENSE_LOOP_SIZE
    t = np.arange(1, 301.0)
    R, items, _ = simulate_retainability(t, 16, 5, seed=5)
    R[np.random.default_rng(0).random(R.shape) < 0.1] = np.nan
    assert R.size > DENSE_LOOP_SIZE
    W = draw_clusters(items, n_boot=6, seed=1).weights(items)
    m, c = _ols_rows(*_replicate_curves(t, R, W, IQR_K, None))
    mn, cn = _naive(t, R, W, IQR_K, None)
    assert np.allclose(m, mn, rtol=1e-12, atol=1e-14) and np.allclose(c, cn, rtol=1e-12, atol=1e-14)
    small = R[:, :40]                                                  # the weighted path, same replicates
    Ws = draw_clusters(items[:40], n_boot=6, seed=1).weights(items[:40])
    assert np.allclose(_replicate_curves(t, small, Ws, IQR_K, None)[1],
                       np.stack([mean_retainability(small[:, np.repeat(np.arange(40), w.astype(int))]) for w in Ws]), equal_nan=True)


def test_chunking_does_not_change_replicates():
    R, items, _ = simulate_retainability(T60, 8, 5, seed=1)
    W = draw_clusters(items, n_boot=30, seed=2).weights(items)
    for nb in (None, 10):
        a = _replicate_curves(T60.astype(float), R, W, IQR_K, nb)
        b = _replicate_curves(T60.astype(float), R, W, IQR_K, nb, chunk=100)   # one replicate at a time
        assert np.array_equal(a[1], b[1], equal_nan=True) and np.array_equal(a[0], b[0], equal_nan=True)


# ---------------------------------------------------------------- bootstrap_forgetting

def test_bootstrap_forgetting_groups_outer_and_errors():
    R, items, seeds = simulate_retainability(T60, 8, 5, n_seeds=2, seed=3)
    bp = bootstrap_forgetting(T60, R, n_boot=200)
    bi = bootstrap_forgetting(T60, R, n_boot=200, groups=items, outer=seeds, scheme="items")
    bt = bootstrap_forgetting(T60, R, n_boot=200, groups=items, outer=seeds)
    assert isinstance(bt, BootstrapFit) and (bp.resampled, bi.resampled, bt.resampled) == ("probes", "items", "two-stage")
    assert (bp.n_clusters, bi.n_clusters) == (80, 16)              # items of different seeds are different clusters
    assert bp.fit.a == bi.fit.a == bt.fit.a == fit_forgetting(T60, mean_retainability(R)).a
    assert bi.a.se > 1.5 * bp.a.se
    assert abs(bt.threshold_log10_tokens.value) != 0 and np.isnan(bt.threshold_log10_tokens.lo)   # no tokens_per_step
    bk = bootstrap_forgetting(T60, R, n_boot=200, groups=items, outer=seeds, tokens_per_step=1000)
    assert np.allclose(bk.threshold_log10_tokens.samples - bk.x_intercept.samples, 3, equal_nan=True)
    assert bk.cov_ab < 0 or bk.cov_ab > 0
    with pytest.raises(ValueError, match="needs groups"):
        bootstrap_forgetting(T60, R, n_boot=5, outer=seeds)
    with pytest.raises(ValueError, match="79 labels"):
        bootstrap_forgetting(T60, R, n_boot=5, groups=items[:-1])
    with pytest.raises(ValueError, match="rows of t"):
        bootstrap_forgetting(T60[:-1], R, n_boot=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.sampled_from([None, 8]))
def test_bootstrap_forgetting_properties(seed, n_bins):
    R, items, _ = simulate_retainability(T60, 5, 3, seed=seed)
    a = bootstrap_forgetting(T60, R, n_boot=40, seed=seed, groups=items, n_bins=n_bins)
    relabelled = bootstrap_forgetting(T60, R, n_boot=40, seed=seed, groups=[f"x{13 * i + 1}" for i in items], n_bins=n_bins)
    assert np.array_equal(a.a.samples, relabelled.a.samples)     # invariant to relabelling clusters
    one = bootstrap_forgetting(T60, R, n_boot=10, groups=np.zeros(R.shape[1]), n_bins=n_bins)
    assert abs(one.a.hi - one.a.lo) < 1e-10 and abs(one.a.lo - one.fit.a) < 1e-10   # one cluster: degenerate
    assert a.a.lo <= a.a.hi and a.b.lo <= a.b.hi and a.x_intercept.lo <= a.x_intercept.hi


def test_x_intercept_is_infinite_when_a_replicate_does_not_fall():
    t = np.arange(1, 100)
    R = np.stack([0.9 - s * np.log10(t) for s in (0.3, 0.2, -0.1)], 1)     # one item rises
    bf = bootstrap_forgetting(t, R, n_boot=300, groups=[0, 1, 2])
    assert np.isinf(bf.x_intercept.samples).any() and bf.x_intercept.hi == np.inf and bf.x_intercept.se == np.inf
    assert np.isfinite(bf.a.samples).all()


# ---------------------------------------------------------------- coverage (nominal 95%)

def test_coverage_item_bootstrap_on_item_level_variation():
    """8 items × 5 probes, each item its own slope and intercept, probes of an item sharing AR(1) noise (300 datasets here).
    Measured when written with 200 datasets × 300 replicates: probes 0.56 (mean se 0.009), items 0.87 (se 0.020)."""
    c = forgetting_coverage(300, schemes=("probes", "items"), n_boot=200, seed=10_000)
    cov = c.groupby("scheme").covered.mean()
    se = c.groupby("scheme").se.mean()
    assert cov["items"] >= 0.85, cov
    assert cov["probes"] < 0.7 and se["items"] > 1.8 * se["probes"], (cov, se)


def test_coverage_with_seeds():
    """3 seeds × 8 items. No seed effect: items 0.90, two-stage 0.97 (measured, 200 datasets); a seed slope effect
    (sd 0.05): items 0.50, two-stage 0.79 (5 seeds: 0.87) — only the two-stage scheme sees seed-level variation."""
    c0 = forgetting_coverage(100, schemes=("items", "two-stage"), n_boot=150, seed=20_000, n_seeds=3).groupby("scheme").covered.mean()
    c1 = forgetting_coverage(100, schemes=("items", "two-stage"), n_boot=150, seed=30_000, n_seeds=3,
                             seed_slope_sd=0.05).groupby("scheme").covered.mean()
    assert c0["two-stage"] >= 0.9 and c0["items"] >= 0.82, c0
    assert c1["items"] < 0.7 and c1["two-stage"] > c1["items"] + 0.15, c1


def _gapped(t, R, seed, n_grid=40, window=50):
    "Each probe known only where its LAM offset + t lands on a shared log-spaced grid (the 'windows' cadence)."
    rng = np.random.default_rng(seed)
    sp = rng.integers(0, window, R.shape[1])
    grid = np.unique(np.round(np.geomspace(1, t[-1] + window, n_grid))).astype(int)
    out = np.full_like(R, np.nan)
    for j in range(R.shape[1]):
        on = np.isin(sp[j] + t, grid)
        out[on, j] = R[on, j]
    keep = ~np.isnan(out).all(1)
    return t[keep], out[keep]


def test_binned_item_bootstrap_coverage_on_gapped_logs():
    """80 gapped datasets of 12 items × 5 probes: the log-binned item bootstrap covers the true a; probes do not."""
    t = np.arange(1, 1501)
    hits = {"items": 0, "probes": 0}
    for s in range(80):
        R, items, _ = simulate_retainability(t, 12, 5, rho=0.99, seed=5000 + s)
        tg, Rg = _gapped(t, R, s)
        for name, g in (("items", items), ("probes", None)):
            bf = bootstrap_forgetting(tg, Rg, n_boot=100, n_bins=15, seed=s, groups=g)
            hits[name] += bf.a.lo <= 0.2 <= bf.a.hi
    assert hits["items"] / 80 >= 0.85 and hits["probes"] < hits["items"], hits


# ---------------------------------------------------------------- alternative laws

@pytest.mark.parametrize("truth", ["log-linear", "power", "exponential"])
def test_compare_laws_prefers_the_true_law(truth):
    rng = np.random.default_rng(1)
    t = np.unique(np.round(np.logspace(0, np.log10(1500), 80)).astype(int))
    y = {"log-linear": 0.9 - 0.2 * np.log10(t), "power": 0.9 * t ** -0.3, "exponential": 0.9 * np.exp(-t / 300)}[truth]
    cl = compare_laws(t, y + 0.02 * rng.standard_normal(len(t)))
    assert cl.law[0] == truth and cl.delta_aic.iloc[1] > 2 and cl.success.all()
    assert list(cl.columns[:3]) == ["law", "aic", "bic"]
    with pytest.raises(ValueError, match="not one of"):
        fit_law(t, y, "linear")


def test_compare_laws_weights_and_fits():
    rng = np.random.default_rng(2)
    t = np.arange(1, 60)
    y = 0.9 - 0.2 * np.log10(t) + 0.02 * rng.standard_normal(len(t))
    w = rng.integers(1, 5, len(t))
    rep, wtd = compare_laws(np.repeat(t, w), np.repeat(y, w)), compare_laws(t, y, weights=w)
    # frequency weights = repeated points: the same parameters and R²; AIC differs only through n
    assert np.allclose(rep.set_index("law").r2, wtd.set_index("law").r2.reindex(rep.law), atol=1e-6)
    f = fit_forgetting(t, y, weights=w)
    assert compare_laws(f).equals(wtd)
    ll = wtd.set_index("law")
    assert ll.delta_aic_vs_log_linear["log-linear"] == 0
    # by hand: two-parameter laws, ΔAIC = n·log(SSR_law / SSR_loglinear)
    ssr = {law: fit_law(t, y, law).chisqr for law in ("log-linear", "exponential")}
    d = compare_laws(t, y).set_index("law").delta_aic_vs_log_linear["exponential"]
    assert abs(d - len(t) * np.log(ssr["exponential"] / ssr["log-linear"])) < 1e-9


def test_bootstrap_law_comparison():
    R, items, _ = simulate_retainability(T60, 8, 5, seed=4)
    bl = bootstrap_law_comparison(T60, R, n_boot=40, groups=items).set_index("law")
    assert list(bl.index) == ["power", "exponential"] and (bl.n_boot == 40).all() and (bl.n_clusters == 8).all()
    tc, yc, _ = mean_curve(T60.astype(float), R)
    assert abs(bl.value["exponential"] - compare_laws(tc, yc).set_index("law").delta_aic_vs_log_linear["exponential"]) < 1e-9
    assert bl.lo["exponential"] > 0                                   # log-linear truth: exponential decay loses


# ---------------------------------------------------------------- fit rows, tables and contrasts

def test_fit_row_by_hand():
    t = np.arange(1, 40)
    y = 0.9 - 0.2 * np.log10(t) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    f = fit_forgetting(t, y, tokens_per_step=100)
    r = fit_row(f, "once", "mem", n_items=3)
    assert tuple(r) == FIT_COLUMNS and r["n_items"] == 3 and np.isnan(r["n_probes"]) and r["resampled"] == "none"
    x = np.log10(t); s2 = ((y - f.predict(t)) ** 2).sum() / (len(t) - 2); sxx = ((x - x.mean()) ** 2).sum()
    assert abs(r["a_se"] - np.sqrt(s2 / sxx)) < 1e-12 and abs(r["cov_ab"] - x.mean() * s2 / sxx) < 1e-9
    assert abs(r["threshold_log10_tokens"] - r["x_intercept_log10_steps"] - 2) < 1e-12
    assert (r["a_lo"], r["a_hi"]) == f.a_ci


def _toy(seed=0, S=600, n_items=12, seed_sd=0.0, a=0.2, steps=None):
    rng = np.random.default_rng(seed); s = np.arange(S + 1); cols, rows = [], []
    a_seed = a + seed_sd * rng.standard_normal()
    for item in range(n_items + 6):
        scen = "once" if item < n_items else "control"
        a_i = a_seed + 0.03 * rng.standard_normal()
        for kind in ("mem", "gen"):
            for j in range(3):
                l = -3 + 2e-4 * s + 0.01 * rng.standard_normal(len(s))
                if scen == "once": l += np.where(s >= 1, 0.5 * (1 - a_i * np.log10(np.maximum(s, 1))), 0)
                cols.append(l); rows.append(dict(item_id=item, kind=kind, index=j, scenario=scen))
    lg = SimpleLog(s, np.stack(cols, 1), pd.DataFrame(rows), {i: [0] for i in range(n_items)},
                   meta=dict(seed=seed, tokens_per_step=2048, protocol=dict(window=50)))
    return lg if steps is None else SimpleLog(steps, lg.scores[steps], lg.probes, lg.injections, lg.meta)


def test_forgetting_table_schema_dense_gapped_corrected_and_pooled():
    lg = _toy()
    raw, corr = forgetting_table(lg, n_boot=0), forgetting_table(lg, corrected=True, n_boot=100)
    for tab in (raw, corr): assert list(tab.columns) == list(FIT_COLUMNS) and len(tab) == 2 and set(tab.scenario) == {"once"}
    assert not raw.binned.any() and (raw.resampled == "none").all() and (raw.a < 0.12).all()   # drift hides forgetting
    assert (abs(corr.a - 0.2) < 0.03).all() and (corr.a_lo < corr.a).all() and (corr.a < corr.a_hi).all() and corr.corrected.all()
    assert (corr.resampled == "items").all() and (corr.n_items == 12).all() and (corr.n_probes == 36).all() and (corr.n_boot == 100).all()
    assert np.allclose(corr.threshold_log10_tokens - corr.x_intercept_log10_steps, np.log10(2048))
    t, R = retainability_matrix(lg, "once", "mem")                   # the per-t curve on the dense log == the official fit
    assert abs(fit_forgetting(t, mean_retainability(R)).a - raw.set_index("kind").a["mem"]) < 1e-12
    grid = np.unique(np.r_[0:52, np.round(np.geomspace(1, 600, 40))]).astype(int)
    g = forgetting_table(_toy(steps=grid), corrected=True, n_boot=50)
    assert g.binned.all() and (abs(g.a - 0.2) < 0.04).all()
    pooled = forgetting_table([_toy(s, seed_sd=0.02) for s in range(3)], corrected=True, n_boot=100)
    assert (pooled.n_seeds == 3).all() and (pooled.n_items == 36).all() and (pooled.resampled == "two-stage").all()
    t, R, it, sd = pooled_retainability([_toy(s) for s in range(3)], "once", "gen", corrected=True)
    assert R.shape[1] == 108 and sorted(set(sd)) == [0, 1, 2] and len(set(zip(sd, it))) == 36
    with pytest.raises(ValueError, match="both have seed 1"):
        forgetting_table([_toy(1), _toy(1)])
    with pytest.raises(ValueError, match="disagree"):
        forgetting_table([_toy(0), SimpleLog(*(getattr(_toy(1), f) for f in ("steps", "scores", "probes", "injections")),
                                             meta=dict(seed=1, tokens_per_step=1, protocol=dict(window=50)))])


def test_forgetting_contrast_paired_and_independent():
    slow = [_toy(s) for s in range(3)]
    fast = [_toy(s + 10, a=0.3) for s in range(3)]
    d = forgetting_contrast((fast, "once", "mem"), (slow, "once", "mem"), corrected=True, n_boot=200)
    assert 0.05 < d.value < 0.15 and d.lo > 0 and d.n_clusters == 72
    same = forgetting_contrast((slow, "once", "mem"), (slow, "once", "mem"), corrected=True, n_boot=50)
    assert same.value == 0 and abs(same.hi) < 1e-12 and abs(same.lo) < 1e-12        # shared clusters: paired exactly
    ind = forgetting_contrast((slow, "once", "mem"), (slow, "once", "mem"), corrected=True, n_boot=200, independent=True)
    assert ind.lo < 0 < ind.hi and ind.hi - ind.lo > 0.01
    kinds = forgetting_contrast((slow, "once", "mem"), (slow, "once", "gen"), corrected=True, n_boot=100)
    assert kinds.n_clusters == 36                                                      # same items, two kinds: paired
    thr = forgetting_contrast((fast, "once", "mem"), (slow, "once", "mem"), quantity="threshold_log10_tokens", corrected=True, n_boot=50)
    xs = forgetting_contrast((fast, "once", "mem"), (slow, "once", "mem"), quantity="x_intercept", corrected=True, n_boot=50)
    assert abs(thr.value - xs.value) < 1e-12                                           # same tokens per step: steps == tokens
    with pytest.raises(ValueError, match="quantity"):
        forgetting_contrast((slow, "once", "mem"), (slow, "once", "mem"), quantity="r2")


def test_cov_ab_is_the_covariance_of_the_replicates():
    R, items, _ = simulate_retainability(T60, 8, 5, seed=9)
    bf = bootstrap_forgetting(T60, R, n_boot=300, groups=items)
    assert abs(bf.cov_ab - np.cov(bf.a.samples, bf.b.samples)[0, 1]) < 1e-15
    assert bf.cov_ab > 0            # by construction on a line through x̄ > 0: a steeper line has a higher intercept
    r = fit_row(bf, "once", "mem")
    assert r["a_se"] == bf.a.se and r["cov_ab"] == bf.cov_ab and r["resampled"] == "items" and r["n_boot"] == 300
