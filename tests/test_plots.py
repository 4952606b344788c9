"""ffka.plots: every figure from tidy frames (synthetic and from ffka.metrics/ffka.fit), savefig locations, Table 2."""
import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from ffka import plots
from ffka.data import PROBE_KINDS
from ffka.metrics import effectivity_table, mean_effectivity, retainability_curves
from ffka.testing import SimpleLog
from ffka.core import repo_root
from ffka.report import markdown_table, latex_table
from ffka.fit import FIT_COLUMNS, forgetting_table
from ffka.stats import bootstrap_effectivity


def synthetic_log(seed=0, n_items=3, n_steps=120, interval=10, n_inj=4, decay=None):
    "A ProbeLog-like SimpleLog: jumps at injections that decay like log t; mem > gen > hard_gen; controls drift only."
    rng = np.random.default_rng(seed)
    decay = decay or {"duplication": 0.3, "paraphrase": 0.15, "once": 0.2}
    jump = {"mem": 0.6, "gen": 0.4, "hard_gen": 0.2}
    rows, inj = [], {}
    for s_i, scen in enumerate(("paraphrase", "duplication", "once", "control")):
        for j in range(n_items):
            item = s_i * n_items + j
            ts = [] if scen == "control" else [0] if scen == "once" else [k * interval for k in range(n_inj)]
            if ts: inj[item] = ts
            for kind in PROBE_KINDS:
                for idx in range(2): rows.append((item, kind, idx, scen, ts))
    steps = np.arange(n_steps + 1)
    scores = np.empty((len(steps), len(rows)))
    for p, (item, kind, idx, scen, ts) in enumerate(rows):
        v = -4.0 + 0.3 * rng.standard_normal() + 0.0005 * steps
        for t in ts:
            dt = np.maximum(steps - t, 1)
            v = v + np.where(steps > t, jump[kind] * np.clip(1 - decay[scen] * np.log10(dt), 0, None), 0.0)
        scores[:, p] = v + 0.01 * rng.standard_normal(len(steps))
    probes = pd.DataFrame([r[:4] for r in rows], columns=["item_id", "kind", "index", "scenario"])
    return SimpleLog(steps, scores, probes, inj, {"tokens_per_step": 4096, "protocol": {"window": 50}})


@pytest.fixture(scope="module")
def log():
    return synthetic_log()


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def nonempty(paths):
    return all(Path(p).is_file() and Path(p).stat().st_size > 1000 for p in paths)


def test_figures_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("FFKA_FIGURES", raising=False)
    assert plots.figures_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("FFKA_FIGURES", str(tmp_path / "env"))
    assert plots.figures_dir() == tmp_path / "env"
    monkeypatch.delenv("FFKA_FIGURES")
    monkeypatch.chdir(repo_root(Path(plots.__file__).parent))
    assert plots.figures_dir() == repo_root() / "figures"
    monkeypatch.chdir(tmp_path)                     # outside the checkout: the checkout of the installed package, else ./figures
    assert repo_root(tmp_path) is None and plots.figures_dir() == (repo_root() or tmp_path) / "figures"


def test_savefig_writes_png_and_pdf(tmp_path):
    fig, ax = plt.subplots(); ax.plot([1, 2], [3, 4])
    paths = plots.savefig(fig, "t", dir=tmp_path / "new")
    assert [p.name for p in paths] == ["t.png", "t.pdf"] and nonempty(paths)
    a = (tmp_path / "new" / "t.pdf").read_bytes()
    fig, ax = plt.subplots(); ax.plot([1, 2], [3, 4])
    plots.savefig(fig, "t", dir=tmp_path / "new")
    assert (tmp_path / "new" / "t.pdf").read_bytes() == a            # no creation date: identical bytes
    with pytest.raises(ValueError, match="bad figure name"):
        plots.savefig(plt.figure(), "../escape", dir=tmp_path)


def test_fig2_dynamics_and_drift(tmp_path, log):
    frame = plots.mean_delta_frame(log)
    assert set(frame.scenario) == {"paraphrase", "duplication", "once", "control"}
    assert np.allclose(frame[frame.step == 0].delta, 0)
    inj = plots.scenario_injection_steps(log)
    assert inj == {"paraphrase": [0, 10, 20, 30], "duplication": [0, 10, 20, 30], "once": [0]}
    fig = plots.plot_dynamics(frame, inj, ylim=(-0.1, 1.8))
    assert len(fig.axes) == 3
    assert nonempty(plots.savefig(fig, "fig2", tmp_path))
    assert nonempty(plots.savefig(plots.plot_control_drift(frame), "drift", tmp_path))
    with pytest.raises(ValueError, match="scores shape"):
        plots.mean_delta_frame(SimpleLog(log.steps[:-1], log.scores, log.probes, log.injections))


def test_fig3_effectivity_from_metrics(tmp_path, log):
    eff = pd.concat([mean_effectivity(synthetic_log(seed=s), window=5).assign(stage=st) for s, st in enumerate(["late", "early", "mid"])])
    fig = plots.plot_effectivity(eff, by="stage", err=None)
    ax = fig.axes[0]
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["early", "mid", "late"]   # stage order, not input order
    assert len(ax.patches) == 9
    assert nonempty(plots.savefig(fig, "fig3", tmp_path))
    # the synthetic ordering survives: mem > gen > hard_gen
    m = eff[eff.scenario == "duplication"].groupby("kind").effectivity.mean()
    assert m["mem"] > m["gen"] > m["hard_gen"] > 0


def test_fig3_draws_the_bootstrap_intervals_as_they_are():
    eff = pd.concat([bootstrap_effectivity(effectivity_table(synthetic_log(seed=s, n_items=4), window=5), n_boot=100).assign(stage=st)
                     for s, st in enumerate(["early", "mid"])])
    eff.loc[0, ["lo", "hi"]] = eff.loc[0, "effectivity"] + np.array([0.01, 0.02])   # an interval that excludes its value
    fig = plots.plot_effectivity(eff, by="stage")
    ax = fig.axes[0]
    segs = [c.lines[2][0].get_segments() for c in ax.containers if hasattr(c, "has_yerr")]
    assert len(segs) == 2                                                           # one interval per stage
    first = eff[(eff.stage == "early") & (eff.kind == "mem")].set_index("scenario").reindex(["duplication", "paraphrase", "once"])
    assert np.allclose([sorted(s[:, 1]) for s in segs[0]], first[["lo", "hi"]].to_numpy())
    assert ax.get_ylabel().endswith("95% CI")


def test_fig4_forgetting_and_fit_table(tmp_path, log):
    curves = retainability_curves(log, window=5)
    fits = forgetting_table(log, window=5, n_boot=100)
    assert list(fits.columns) == list(FIT_COLUMNS)
    fig = plots.plot_forgetting(curves, fits, ylim=(0, 1.2))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert all("a = " in l and "[" in l for l in labels) and len(labels) == 3
    assert len(fig.axes[0].collections) == 6                                        # scatter + band per kind
    assert nonempty(plots.savefig(fig, "fig4", tmp_path))
    no_band = plots.plot_forgetting(curves, fits.drop(columns=["cov_ab"]))        # no covariance: no band, still a line
    assert len(no_band.axes[0].collections) == 3
    ft = plots.fit_table(curves, tokens_per_step=4096)
    assert list(ft.columns) == list(FIT_COLUMNS) and set(ft.resampled) == {"none"}
    n, f2 = fits.set_index(["scenario", "kind"]), ft.set_index(["scenario", "kind"])
    # ffka.fit on the per-t curve == fit_table on the same curve (dense log: no binning)
    assert np.allclose(f2.loc[n.index, "a"], n.a, atol=1e-9)
    a = f2.a
    assert (a.loc["duplication"] > a.loc["paraphrase"]).all()             # the synthetic decay constants are recovered in order
    ok = f2.threshold_log10_tokens.notna()                                # NaN where a <= 0 (no threshold)
    assert ok.sum() >= 4 and np.allclose((f2.threshold_log10_tokens - f2.x_intercept_log10_steps)[ok], np.log10(4096))
    assert len(plots.fit_table(pd.concat([curves.assign(stage="a"), curves.assign(stage="b")]), by="stage")) == 2 * len(ft)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(-1, 1), b=st.floats(-1, 2), a_se=st.floats(0, 0.5), b_se=st.floats(0, 0.5), rho=st.floats(-1, 1), x=st.floats(0, 6))
def test_line_band_contains_the_line_and_matches_the_variance(a, b, a_se, b_se, rho, x):
    fit = dict(a=a, b=b, a_se=a_se, b_se=b_se, cov_ab=rho * a_se * b_se, level=0.95)
    lo, hi = plots.line_band(fit, np.array([x]))
    y = b - a * x
    assert lo[0] <= y + 1e-12 and y - 1e-12 <= hi[0]
    var = b_se ** 2 + x ** 2 * a_se ** 2 - 2 * x * rho * a_se * b_se                  # var(b − a·x)
    assert np.isclose((hi[0] - lo[0]) / 2, 1.959963984540054 * np.sqrt(max(var, 0)), atol=1e-9)


def test_fig5_threshold_lines_reach_the_x_intercept(tmp_path):
    big, small = synthetic_log(decay={"duplication": 0.2, "paraphrase": 0.1, "once": 0.1}), synthetic_log(seed=1)
    curves, fits = [], []
    for b, lg, tps in ((16, big, 16 * 256), (1, small, 256)):
        curves.append(retainability_curves(lg, window=5).assign(batch_size=b, tokens_per_step=tps))
        fits.append(forgetting_table(lg, window=5, tokens_per_step=tps, n_boot=100).assign(batch_size=b))
    fig = plots.plot_threshold(pd.concat(curves), pd.concat(fits))
    assert nonempty(plots.savefig(fig, "fig5", tmp_path))
    f = fits[0].iloc[0]
    m, b, x0 = plots.tokens_fit(f, 16 * 256)
    assert np.isclose(x0, f.threshold_log10_tokens) or f.a <= 0
    line = [l for l in fig.axes[0].get_lines() if l.get_linestyle() == "-" and len(l.get_xdata()) == 60][0]
    assert np.isclose(line.get_ydata()[-1], 0, atol=1e-6) or np.log10(line.get_xdata()[-1]) <= 14.0 + 1e-9
    bars = [l for l in fig.axes[0].get_lines() if l.get_linewidth() == 2.5]
    assert bars and all((l.get_ydata() < 0).all() for l in bars)                    # threshold intervals below R = 0
    with pytest.raises(ValueError, match="lacks column"):
        plots.plot_threshold(pd.concat(curves), pd.concat(fits).drop(columns="b"))


@settings(max_examples=50, deadline=None)
@given(slope=st.floats(-2, -1e-3), intercept=st.floats(0.1, 2), tps=st.floats(1, 1e9))
def test_tokens_fit_shifts_intercept_only(slope, intercept, tps):
    m, b, x0 = plots.tokens_fit({"a": -slope, "b": intercept}, tps)
    assert m == slope
    assert np.isclose(x0, -intercept / slope + np.log10(tps))
    assert np.isclose(m * x0 + b, 0, atol=1e-9 * max(1, abs(b)))


def test_decay_table_markdown_and_latex(log):
    fits = pd.concat([forgetting_table(synthetic_log(seed=s), window=5, n_boot=100).assign(stage=st) for s, st in enumerate(["mid", "late", "early"])])
    tab, num = plots.decay_table(fits)
    assert list(tab.index) == ["early", "mid", "late"] and tab.shape == (3, 9)
    assert all(v.count("[") == 1 and v.endswith("]") for v in tab.to_numpy().ravel())    # "a [lo, hi]"
    r = fits[(fits.stage == "late") & (fits.scenario == "once") & (fits.kind == "gen")].iloc[0]
    assert tab.loc["late", ("Once", "Semantic")] == f"{r.a:.3f} [{r.a_lo:.3f}, {r.a_hi:.3f}]" and num.loc["late", ("Once", "Semantic")] == r.a
    md = markdown_table(tab)
    assert md.count("\n") == 4 and "Duplication / Memorization" in md
    se, _ = plots.decay_table(fits.drop(columns=["a_lo", "a_hi"]))                   # only se: the paper's "a ± se"
    assert all("±" in v for v in se.to_numpy().ravel())
    tex = latex_table(se, caption="a")
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex
    thr, _ = plots.decay_table(fits, value="threshold_log10_tokens", err=None, digits=2, interval=False)
    assert "±" not in "".join(thr.to_numpy().ravel()) and "[" not in "".join(thr.to_numpy().ravel())
    with pytest.raises(ValueError, match="lacks column"):
        plots.decay_table(fits.drop(columns="stage"))
