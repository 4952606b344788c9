"""ffka.metrics against an independent re-implementation of the official algorithm (tests/official_reference.py),
on dense and on "windows"-cadence logs, plus hypothesis property tests of the edge cases."""
import sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, assume, HealthCheck, strategies as st
from hypothesis.extra.numpy import arrays

sys.path.insert(0, str(Path(__file__).parent))
import official_reference as ref
from ffka.testing import SimpleLog
from ffka.metrics import (IQR_K, IQR_K_PAPER, NO_STEP, control_drift, effectivity, effectivity_table, filtered_mean,
                          iqr_keep, local_acquisition_max, local_retainability, mean_effectivity, mean_retainability,
                          remove_outliers_iqr, retainability, retainability_curves, retainability_matrix, step_effectivity)

TOL = 1e-9
S = 2500                                   # a 2500-step log: rows 0..2500
LAYOUT = {"paraphrase": list(range(0, 1000, 100)), "duplication": list(range(0, 1000, 100)), "once": [0]}
KINDS = {"mem": "mem", "gen": "gen", "hard_gen": "gen_hard"}   # ffka kind -> official key


def make_log(seed=0, n_items=6, n_probes=5, S=S, layout=LAYOUT, n_control=0):
    """Synthetic ℓ trajectories in the paper's layout: jumps after each injection (random lag), log-linear decay,
    white noise + random-walk drift; one constant probe (zero gain: skipped by R) and one always-falling probe
    (failure cases) per kind; optional never-injected control items."""
    rng = np.random.default_rng(seed)
    s = np.arange(S + 1)
    cols, rows, injections, groups = [], [], {}, {}
    item = 0
    for scen, inj in list(layout.items()) + [("control", [])] * bool(n_control):
        groups[scen] = {"train_idx": inj, **{k: [] for k in KINDS.values()}}
        for _ in range(n_items if scen != "control" else n_control):
            if inj: injections[item] = list(inj)
            for kind, okey in KINDS.items():
                for j in range(n_probes):
                    l = -3.0 + np.cumsum(0.002 * rng.standard_normal(len(s))) + 0.03 * rng.standard_normal(len(s))
                    for t_i in inj:
                        gain = abs(rng.normal(0.3 if kind != "hard_gen" else 0.05, 0.15))
                        a = rng.normal(0.25, 0.05)
                        dt = s - (t_i + rng.integers(1, 30))
                        l += np.where(dt >= 0, gain * np.clip(1 - a * np.log10(np.maximum(dt, 0) + 1), 0, None), 0)
                    if scen == "duplication" and item % n_items == 0 and j == 0: l = np.full(len(s), -2.0)   # zero gain
                    if scen == "duplication" and item % n_items == 1 and j == 0: l = -3.0 - 1e-3 * s        # failures only
                    cols.append(l); rows.append(dict(item_id=item, kind=kind, index=j, scenario=scen))
                    groups[scen][okey].append(-l)                       # the official code works on CE = -ℓ
            item += 1
    if not n_control: groups.pop("control", None)
    return SimpleLog(s, np.stack(cols, 1), pd.DataFrame(rows), injections, {"protocol": {"window": 50}}), groups


def windows_steps(layout=LAYOUT, S=S, window=50, n_grid=40):
    "The 'windows' cadence: every step in (t_i, t_i+window], the injection steps, a log-spaced grid, 0 and S."
    keep = {0, S}
    for inj in layout.values():
        for t in inj: keep |= {t} | set(range(t + 1, t + window + 1))
    keep |= set(np.unique(np.round(np.logspace(0, np.log10(S), n_grid)).astype(int)).tolist())
    return np.array(sorted(k for k in keep if k <= S))


def subsample(lg, steps):
    return SimpleLog(steps, lg.scores[steps], lg.probes, lg.injections, lg.meta)


@pytest.fixture(scope="module")
def dense():
    lg, groups = make_log(0)
    ref_eff = {k: ref.measure_learnability(groups, multiplier=k) for k in (IQR_K, IQR_K_PAPER)}
    ref_R = ref.measure_forgetting(groups, multiplier=IQR_K)
    return lg, groups, ref_eff, ref_R


# ---------------------------------------------------------------- agreement with the official algorithm

@pytest.mark.parametrize("k", [IQR_K, IQR_K_PAPER])
def test_pooled_and_step_effectivity_agree_with_reference(dense, k):
    lg, groups, ref_eff, _ = dense
    pooled, step = ref_eff[k]
    me = mean_effectivity(lg, k=k).set_index(["scenario", "kind"])
    se = step_effectivity(lg, k=k)
    for scen in LAYOUT:
        for kind, okey in KINDS.items():
            assert abs(me.loc[(scen, kind), "effectivity"] - pooled[scen][okey]) < TOL
            mine = se[(se.scenario == scen) & (se.kind == kind)].sort_values("injection").effectivity.to_numpy()
            np.testing.assert_allclose(mine, step[scen][okey], rtol=0, atol=TOL)
    # failure cases are really there and kept by default (the code), dropped on request (paper App. H)
    tab = effectivity_table(lg)
    assert tab.failure.sum() > 10
    ex = mean_effectivity(tab, exclude_failures=True).set_index(["scenario", "kind"])
    assert (ex.effectivity >= me.effectivity - 1e-12).all()


def test_retainability_curves_agree_with_reference(dense):
    lg, groups, _, ref_R = dense
    n = len(ref_R["once"]["mem"])
    assert n == S + 1 - 900 - 50                                   # t = 0 .. len(log) - 951
    rc = retainability_curves(lg, t_max=n - 1)
    worst = 0.0
    for scen in LAYOUT:
        for kind, okey in KINDS.items():
            c = rc[(rc.scenario == scen) & (rc.kind == kind)]
            np.testing.assert_array_equal(c.t.to_numpy(), np.arange(n))
            d = np.abs(c.retainability.to_numpy() - np.array(ref_R[scen][okey]) / 100)
            worst = max(worst, d.max())
    assert worst < TOL, worst
    # default t_max: once items are followed further (S - 0 - 50) and agree on the shared t
    rc2 = retainability_curves(lg)
    c = rc2[(rc2.scenario == "once") & (rc2.kind == "gen")]
    assert c.t.max() == S - 50
    np.testing.assert_allclose(c.retainability.to_numpy()[:n], np.array(ref_R["once"]["gen"]) / 100, rtol=0, atol=TOL)


def test_plain_array_api_agrees_with_reference(dense):
    lg, groups, _, ref_R = dense
    for scen, inj in LAYOUT.items():
        cols = lg.probes.index[(lg.probes.scenario == scen) & (lg.probes.kind == "gen")].to_numpy()
        v = groups[scen]["gen"]
        E = effectivity(lg.scores[:, cols], inj)
        for j, vj in enumerate(v):
            np.testing.assert_allclose(E[:, j], ref.get_probe_learnability(vj, inj), rtol=0, atol=TOL)
            assert local_acquisition_max(lg.scores[:, cols[j]], inj[-1]) == ref.stabilized_point(vj, inj[-1])
        t, R = retainability(lg.scores[:, cols], inj[-1], t_max=len(ref_R[scen]["gen"]) - 1)
        for tt in (0, 1, 7, 500, t[-1]):
            want = [ref.get_probe_retainability(vj, tt, inj[-1]) for vj in v]
            want = np.array([np.nan if w is None else w / 100 for w in want])
            np.testing.assert_allclose(R[tt], want, rtol=0, atol=TOL)
        np.testing.assert_allclose(mean_retainability(R), np.array(ref_R[scen]["gen"]) / 100, rtol=0, atol=TOL)


def test_windows_cadence_agrees_with_reference_on_dense_log(dense):
    lg, groups, ref_eff, ref_R = dense
    steps = windows_steps()
    sub = subsample(lg, steps)
    assert len(steps) < 0.5 * (S + 1)
    # effectivity: the windows are logged densely, so every number is identical
    a, b = effectivity_table(lg), effectivity_table(sub)
    np.testing.assert_array_equal(a.effectivity.to_numpy(), b.effectivity.to_numpy())
    me = mean_effectivity(b).set_index(["scenario", "kind"])
    for scen in LAYOUT:
        for kind, okey in KINDS.items():
            assert abs(me.loc[(scen, kind), "effectivity"] - ref_eff[IQR_K][0][scen][okey]) < TOL
    # retainability: each probe at the t where t_LAM + t was logged; the mean where every probe was logged
    n = len(ref_R["once"]["mem"])
    n_shared = 0
    for scen, inj in LAYOUT.items():
        for kind, okey in KINDS.items():
            t, R = retainability_matrix(sub, scen, kind, t_max=n - 1)
            assert set(t) < set(range(n)) and 0 in t
            v = groups[scen][okey]
            want = np.array([[np.nan if (r := ref.get_probe_retainability(vj, tt, inj[-1])) is None else r / 100 for vj in v] for tt in t])
            got = ~np.isnan(R)
            np.testing.assert_allclose(R[got], want[got], rtol=0, atol=TOL)
            sps = np.array([ref.stabilized_point(vj, inj[-1]) for vj in v])
            logged = np.isin(sps[None, :] + t[:, None], steps)
            np.testing.assert_array_equal(got, logged & ~np.isnan(want))      # NaN only where not logged or skipped
            full = (got == ~np.isnan(want)).all(1)                              # every non-skipped probe present
            m = mean_retainability(R)
            np.testing.assert_allclose(m[full], np.array(ref_R[scen][okey])[t[full]] / 100, rtol=0, atol=TOL)
            n_shared += full.sum()
    assert n_shared > 100


def test_once_only_layout_and_other_probe_counts():
    layout = {"once": [0]}
    lg, groups = make_log(3, n_items=4, n_probes=3, S=400, layout=layout)
    pooled, step = ref.measure_learnability(groups)
    curves = ref.measure_forgetting(groups)
    me = mean_effectivity(lg).set_index(["scenario", "kind"])
    rc = retainability_curves(lg)
    for kind, okey in KINDS.items():
        assert abs(me.loc[("once", kind), "effectivity"] - pooled["once"][okey]) < TOL
        c = rc[rc.kind == kind]
        np.testing.assert_allclose(c.retainability.to_numpy(), np.array(curves["once"][okey]) / 100, rtol=0, atol=TOL)


def test_real_probelog_and_train_windows_cadence(dense):
    """Duck typing against the real ffka.train.ProbeLog, on the steps ffka.train.probe_steps logs with 'windows'."""
    train = pytest.importorskip("ffka.train")
    lg, groups, ref_eff, ref_R = dense
    steps = train.probe_steps(S, sorted({t for v in LAYOUT.values() for t in v}), "windows", window=50, n_grid=40)
    plog = train.ProbeLog(steps, lg.scores[steps], lg.probes, np.zeros(S), lg.injections, dict(tokens_per_step=2048 * 2048, protocol=dict(window=50)))
    me = mean_effectivity(plog).set_index(["scenario", "kind"])
    for scen in LAYOUT:
        for kind, okey in KINDS.items():
            assert abs(me.loc[(scen, kind), "effectivity"] - ref_eff[IQR_K][0][scen][okey]) < TOL
    rc = retainability_curves(plog)
    assert set(rc.scenario) == set(LAYOUT) and not np.isinf(rc.retainability).any()
    from ffka.fit import forgetting_table
    ft = forgetting_table(plog, n_boot=40).set_index(["scenario", "kind"])
    assert ft.binned.all() and ft.a.notna().all() and (ft.threshold_log10_tokens - ft.x_intercept_log10_steps).round(2).eq(6.62).all()
    # the binned, dense-weighted fit on the windows log estimates the official dense fit (within 3 bootstrap se)
    for scen in LAYOUT:
        for kind, okey in KINDS.items():
            o = ref.fit_curve(ref_R[scen][okey])
            assert abs(ft.loc[(scen, kind), "a"] - o["a"]) < 3 * ft.loc[(scen, kind), "a_se"], (scen, kind)


# ---------------------------------------------------------------- control drift

def test_control_drift_and_corrections():
    lg, _ = make_log(1, n_items=4, n_probes=3, S=1200, n_control=4)
    drift = 2e-4 * lg.steps                                   # everyone learns the background
    lg = SimpleLog(lg.steps, lg.scores + drift[:, None], lg.probes, lg.injections, lg.meta)
    d = control_drift(lg)
    for kind in KINDS:
        dk = d[d.kind == kind]
        assert abs(dk.drift.iloc[-1] - drift[-1]) < 0.1 and dk.n.iloc[0] == 12
    me = mean_effectivity(lg).set_index(["scenario", "kind"])
    assert (me.loc["control", "effectivity"] > 0).all()       # max of noise over 50 steps: the placebo
    ok = me[me.index.get_level_values("scenario") != "control"]
    np.testing.assert_allclose(ok.effectivity_vs_control, ok.effectivity - ok.placebo)
    rc = retainability_curves(lg)
    assert "control" not in set(rc.scenario)
    late = rc[rc.t == rc.t.max()].set_index(["scenario", "kind"])
    assert (late.retainability > late.retainability_corrected).mean() > 0.8   # drift inflates raw retainability
    # without controls the corrected columns are NaN
    lg0, _ = make_log(1, n_items=2, n_probes=2, S=300, layout={"once": [0]})
    assert mean_effectivity(lg0).effectivity_corrected.isna().all()
    assert retainability_curves(lg0).retainability_corrected.isna().all()


def test_tidy_handles_nan_unassigned_and_bad_logs():
    lg, _ = make_log(2, n_items=2, n_probes=2, S=300, layout={"duplication": [0, 100], "once": [0]}, n_control=1)
    sc = lg.scores.copy()
    sc[::7, ::3] = np.nan
    probes = lg.probes.copy()
    probes.loc[probes.item_id == 0, "scenario"] = None           # e.g. items 120-129 of the paper
    bad = SimpleLog(lg.steps, sc, probes, lg.injections, lg.meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tab = effectivity_table(bad)
        assert 0 not in set(tab.item_id)
        for f in (mean_effectivity(tab), step_effectivity(tab), retainability_curves(bad)):
            num = f.select_dtypes("number").to_numpy(dtype=float)
            assert not np.isinf(num).any()
    with pytest.raises(ValueError, match="log.probes"):
        effectivity_table(SimpleLog(lg.steps, lg.scores, lg.probes.iloc[:-1], lg.injections, lg.meta))
    with pytest.raises(TypeError, match="injections"):
        effectivity_table(type("X", (), dict(steps=lg.steps, scores=lg.scores, probes=lg.probes))())


# ---------------------------------------------------------------- hypothesis property tests

SET = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
vals = st.one_of(st.floats(-8, 0, allow_nan=False, width=64), st.just(np.nan), st.just(-np.inf))


@st.composite
def noisy_log(draw, min_len=2, max_len=60):
    n = draw(st.integers(min_len, max_len))
    P = draw(st.integers(1, 3))
    x = draw(arrays(np.float64, (n, P), elements=vals))
    window = draw(st.integers(1, 12))
    inj = sorted(set(draw(st.lists(st.integers(0, n + 5), min_size=1, max_size=4))))
    return x, window, inj


@SET
@given(noisy_log())
def test_nan_inf_never_crash_never_inf(case):
    x, window, inj = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        E = effectivity(x, inj, window)
        assert E.shape == (len(inj), x.shape[1]) and not np.isinf(E).any()
        for k, t in enumerate(inj):
            lam = local_acquisition_max(x, t, window)
            xi = np.where(np.isfinite(x), x, np.nan)
            for j in range(x.shape[1]):
                win = xi[t + 1:t + window + 1, j]
                if lam[j] == NO_STEP:
                    assert len(win) == 0 or np.isnan(win).all()
                    assert np.isnan(E[k, j])
                else:
                    assert t < lam[j] <= t + window and lam[j] < len(x)
                    assert xi[lam[j], j] == np.nanmax(win)
                    assert np.isnan(E[k, j]) == (t >= len(x) or np.isnan(xi[t, j]))
        t, R = retainability(x, inj[-1], window, reference_step=inj[0])
        assert R.shape == (len(t), x.shape[1]) and not np.isinf(R).any()
        assert len(t) == 0 or t[-1] <= len(x) - 1 - inj[-1] - window
        assert not np.isinf(local_retainability(x, inj, window)).any()
        m = mean_retainability(R)
        assert m.shape == (len(t),) and not np.isinf(m).any()


@SET
@given(st.integers(2, 80), st.floats(-10, 0), st.integers(1, 20), st.integers(1, 3))
def test_constant_trajectories(n, c, window, P):
    x = np.full((n, P), c)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inj = [0] if n < 3 else [0, n // 2]
        E = effectivity(x, inj, window)
        assert np.all(E == 0)                                       # zero gain, not NaN
        assert np.all(local_acquisition_max(x, 0, window) == 1)     # first step of the window
        t, R = retainability(x, 0, window)
        assert len(t) == max(n - 1 - window + 1, 0) and np.isnan(R).all()   # 0/0 -> NaN, as the code skips them
        assert np.isnan(mean_retainability(R)).all()
        assert filtered_mean(E) == 0


@SET
@given(st.integers(10, 60), st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_zero_and_negative_gains(n, window, seed):
    rng = np.random.default_rng(seed)
    x = -np.cumsum(rng.random((n, 2)), 0)                 # strictly falling: every injection is a failure
    E = effectivity(x, [0, n // 2], window)
    assert np.all(E[~np.isnan(E)] < 0)
    tab = pd.DataFrame(dict(scenario="s", kind="mem", injection=0, injection_step=0, effectivity=E.ravel(),
                            effectivity_corrected=np.nan, failure=E.ravel() < 0))
    assert np.isnan(mean_effectivity(tab, exclude_failures=True).effectivity.iloc[0])
    assert np.isnan(local_retainability(x, [0], window)).all()   # only defined for positive gains
    t, R = retainability(x, 0, window)                            # negative gains are kept (ratio of two negatives)
    assert len(t) == 0 or np.all(R[0][~np.isnan(R[0])] == 1.0)


@SET
@given(st.integers(3, 120), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_one_injection_and_window_at_end(n, window, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(-3, 1, n)
    t_i = int(rng.integers(0, n))
    E = effectivity(x, [t_i], window)
    assert E.shape == (1,)
    if t_i == n - 1:
        assert np.isnan(E[0]) and local_acquisition_max(x, t_i, window) == NO_STEP
    else:   # a window reaching past the end is truncated, as the official slice is
        assert E[0] == np.max(x[t_i + 1:t_i + window + 1]) - x[t_i]
    t, R = retainability(x, t_i, window)
    if n - 1 - t_i - window < 0:
        assert len(t) == 0 and R.shape == (0,)
    else:
        np.testing.assert_array_equal(t, np.arange(n - t_i - window))
        assert np.isnan(R[0]) or R[0] == 1.0


@SET
@given(st.integers(60, 200), st.integers(1, 15), st.integers(0, 2**32 - 1), st.integers(0, 3))
def test_dense_agrees_with_reference_random(n, window, seed, n_extra):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(-3, 0.5, (n, 3)), 1)                 # rounding makes ties: first occurrence wins in both
    last = n - 1 - window - int(rng.integers(0, 10))
    assume(last > 0)
    inj = sorted(set([0] + rng.integers(0, last, n_extra).tolist() + [last]))
    E = effectivity(x, inj, window)
    t, R = retainability(x, inj[-1], window)
    for j in range(3):
        v = list(-x[:, j])
        np.testing.assert_allclose(E[:, j], ref.get_probe_learnability(np.array(v), inj, window), rtol=0, atol=TOL)
        want = [ref.get_probe_retainability(np.array(v), tt, inj[-1], window) for tt in t]
        want = np.array([np.nan if w is None else w / 100 for w in want])
        np.testing.assert_allclose(R[:, j], want, rtol=0, atol=TOL)


@SET
@given(st.integers(80, 200), st.integers(1, 15), st.integers(0, 2**32 - 1))
def test_gapped_equals_dense_where_logged(n, window, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(-3, 0.5, (n, 2))
    inj = [0, n // 3]
    assume(n - 1 - inj[-1] - window >= 0)
    keep = set(rng.choice(n, n // 4, replace=False).tolist()) | {0, n - 1}
    for t_i in inj: keep |= set(range(t_i, min(t_i + window, n - 1) + 1))
    steps = np.array(sorted(keep))
    np.testing.assert_array_equal(effectivity(x[steps], inj, window, steps=steps), effectivity(x, inj, window))
    t1, R1 = retainability(x, inj[-1], window)
    t2, R2 = retainability(x[steps], inj[-1], window, steps=steps)
    assert set(t2) <= set(t1)
    ok = ~np.isnan(R2)
    np.testing.assert_array_equal(R2[ok], R1[np.searchsorted(t1, t2)][ok])


@SET
@given(arrays(np.float64, st.integers(0, 60), elements=st.floats(-1e3, 1e3, allow_nan=False)), st.sampled_from([1.5, 2.0, 3.0]))
def test_iqr_filter_matches_reference(x, k):
    got = remove_outliers_iqr(x, k)
    if len(x):
        np.testing.assert_array_equal(got, ref.remove_outliers_iqr(list(x), k))
        assert abs(filtered_mean(x, k) - ref.mean(ref.remove_outliers_iqr(list(x), k))) <= 1e-9 * (1 + np.abs(x).max())
    else:
        assert len(got) == 0 and np.isnan(filtered_mean(x, k))
    xn = np.concatenate([x, [np.nan, np.inf]])
    np.testing.assert_array_equal(remove_outliers_iqr(xn, k), got)   # missing values are dropped first


@SET
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 30)), elements=vals))
def test_mean_retainability_is_rowwise_filter_then_mean(R):
    R = np.where(np.isinf(R), np.nan, R)
    m, n, kept = mean_retainability(R, return_counts=True)
    for i, row in enumerate(R):
        r = [v for v in row if not np.isnan(v)]
        if not r:
            assert np.isnan(m[i]) and n[i] == 0 and kept[i] == 0
        else:
            f = ref.remove_outliers_iqr(r, IQR_K)
            assert abs(m[i] - ref.mean(f)) <= 1e-12 * (1 + max(abs(v) for v in r)) and kept[i] == len(f) and n[i] == len(r)


def test_iqr_keep_axis_and_errors():
    R = np.random.default_rng(0).standard_t(2, (30, 50))
    keep = iqr_keep(R, axis=1)
    for i in range(30):
        np.testing.assert_array_equal(R[i][keep[i]], ref.remove_outliers_iqr(list(R[i])))
    np.testing.assert_array_equal(iqr_keep(R.T, axis=0), keep.T)
    with pytest.raises(ValueError, match="strictly ascending"):
        effectivity(np.zeros(3), [0], steps=[0, 0, 1])
    with pytest.raises(ValueError, match="3 logged steps"):
        retainability(np.zeros(3), 0, steps=[0, 1])


@pytest.mark.parametrize("window", [0, -1, -50])
def test_windows_rejected_naming_the_parameter(window):
    x = np.full((10, 2), -1.0)
    for call in (lambda: local_acquisition_max(x, 0, window), lambda: effectivity(x, [0], window),
                 lambda: retainability(x, 0, window), lambda: local_retainability(x, [0], window)):
        with pytest.raises(ValueError, match=f"^window: must be >= 1, got {window}$"): call()
    from ffka.testing import toy_log
    with pytest.raises(ValueError, match=f"window: must be a whole number >= 1, got {window}"): effectivity_table(toy_log(S=60), window)
