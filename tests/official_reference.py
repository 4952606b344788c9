"""An independent re-implementation of the official analysis algorithm, for tests only.

Written from science.md §5 (the official `analysis/ppl_analysis.py` at commit c5273a3 and
`analysis/forgetting_plot.py` of kaistAI/factual-knowledge-acquisition) and structured like that
code: it works on the stored cross-entropy values v = -ℓ of a DENSE log (v[s] after s updates),
with plain lists and loops, `np.argmin` over `v[t_i+1 : t_i+51]`, pooled effectivity v[t_i] - v[sp],
the IQR filter on numpy percentiles, normalised retainability (v[sp+t] - v[0]) / (v[sp] - v[0])
(probes with v[sp] == v[0] skipped), stored in percent, and the forgetting fit with `np.polyfit` on
log10 t. It shares no code with ffka.metrics / ffka.fit on purpose: the tests compare the two.

Generalisations of the hard-coded official values (items 0-39 / 40-79 / 80-119, injections at
0, 100, ..., 900 or 0, 5 probes) are explicit arguments; nothing else differs.
"""
import numpy as np

KINDS = ("mem", "gen", "gen_hard")


def remove_outliers_iqr(data, multiplier=2.0):
    q1 = np.percentile(data, 25)
    q3 = np.percentile(data, 75)
    iqr = q3 - q1
    lower_bound = q1 - multiplier * iqr
    upper_bound = q3 + multiplier * iqr
    return [x for x in data if lower_bound <= x <= upper_bound]


def mean(l):
    return sum(l) / len(l)


def stabilized_point(v, train_idx, margin=50):
    """The LAM: index of the minimum CE over the `margin` steps after the injection at `train_idx`."""
    return int(np.argmin(v[train_idx + 1:train_idx + margin + 1])) + train_idx + 1


def get_probe_retainability(v, interval, last_train_idx, margin=50):
    """Retainability of one probe at `interval` after the LAM of the last injection, in percent; None if skipped."""
    sp = stabilized_point(v, last_train_idx, margin)
    min_ppl = v[sp]
    init_ppl = v[0]
    last_ppl = v[sp + interval]
    if init_ppl == min_ppl:
        return None
    return (last_ppl - init_ppl) / (min_ppl - init_ppl) * 100


def get_probe_learnability(v, train_idxs, margin=50):
    """Effectivity of one probe for every injection (failure cases kept, as in the code)."""
    step_learnability = []
    for train_idx in train_idxs:
        sp = stabilized_point(v, train_idx, margin)
        init_ppl = v[train_idx]
        min_ppl = v[sp]
        step_learnability.append(init_ppl - min_ppl)
    return step_learnability


def measure_learnability(groups, multiplier=2.0, margin=50):
    """`measure_scores(..., skip_log_forgetting=True)`: pooled and per-injection effectivity.

    groups: {scenario: {"train_idx": [injection steps], "mem": [v, ...], "gen": [...], "gen_hard": [...]}}
    returns (learnability_score {scenario: {kind: mean}}, step_learnability_score {scenario: {kind: [mean per injection]}})
    """
    learnability_score, step_learnability_score = {}, {}
    for scenario, g in groups.items():
        learnability_score[scenario], step_learnability_score[scenario] = {}, {}
        for kind in KINDS:
            learnability_per_ex = []
            learnability_step_per_ex = []
            for v in g[kind]:
                step_learnability = get_probe_learnability(v, g["train_idx"], margin)
                learnability_per_ex.extend(step_learnability)
                learnability_step_per_ex.append(step_learnability)
            learnability_per_ex = remove_outliers_iqr(learnability_per_ex, multiplier)
            learnability_step_per_ex = [remove_outliers_iqr([ai for ai in a if ai is not None], multiplier)
                                        for a in zip(*learnability_step_per_ex)]
            learnability_score[scenario][kind] = mean(learnability_per_ex)
            step_learnability_score[scenario][kind] = [mean(a) for a in learnability_step_per_ex]
    return learnability_score, step_learnability_score


def measure_forgetting(groups, n_intervals=None, multiplier=2.0, margin=50):
    """The retainability curves (percent), one `measure_scores(interval)` call per interval.

    As in the official loop, every scenario uses the same interval range 0 .. len(v) - max(last injection) - margin - 1
    (len - 951 in the paper's layout).
    returns {scenario: {kind: [mean R(t) in percent for t = 0, 1, ...]}}
    """
    log_len = len(next(iter(groups.values()))["mem"][0])
    if n_intervals is None:
        n_intervals = log_len - max(g["train_idx"][-1] for g in groups.values()) - margin
    forgetting = {s: {k: [] for k in KINDS} for s in groups}
    for interval in range(n_intervals):
        for scenario, g in groups.items():
            for kind in KINDS:
                forgetting_per_ex = []
                for v in g[kind]:
                    r = get_probe_retainability(v, interval, g["train_idx"][-1], margin)
                    if r is not None:
                        forgetting_per_ex.append(r)
                forgetting_per_ex = remove_outliers_iqr(forgetting_per_ex, multiplier)
                forgetting[scenario][kind].append(mean(forgetting_per_ex))
    return forgetting


def plot_trendline(x, y):
    """`forgetting_plot.plot_trendline` without the plot: OLS on log10 x."""
    log_x = np.log10(x)
    slope, intercept = np.polyfit(log_x, y, 1)
    x_intercept = -intercept / slope
    y_pred = np.polyval([slope, intercept], log_x)
    ssr = np.sum((y - y_pred) ** 2)
    sst = np.sum((y - np.mean(y)) ** 2)
    r_squared = 1 - (ssr / sst)
    n = len(y)
    se_slope = np.sqrt(ssr / (n - 2)) / np.sqrt(np.sum((log_x - np.mean(log_x)) ** 2))
    return dict(slope=slope, intercept=intercept, a=-slope, se=se_slope, r2=r_squared, x_intercept=x_intercept)


def fit_curve(curve_percent):
    """`forgetting_plot.plot` for one curve: drop t = 0, flip if the first point is negative, /100, drop exact -1.0."""
    y = curve_percent[1:]
    x_values = range(1, len(curve_percent))
    if y[0] < 0:
        y = [-i for i in y]
    y = [i / 100 for i in y]
    filtered_x_values, filtered_y = [], []
    for i in range(len(y)):
        if y[i] != -1.0:
            filtered_x_values.append(x_values[i])
            filtered_y.append(y[i])
    return plot_trendline(np.array(filtered_x_values), np.array(filtered_y))
