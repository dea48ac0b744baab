"""Figure of the causal checks (:func:`rsa_bias.experiments.causal_checks.run_causal`):
steering curves per feature and the accuracy of read-outs from the top principal
components."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns
import xarray as xr


def plot_causal(ds: xr.Dataset):
    """Steering flip rates and read-out accuracy from the top PCs, per feature.

    Parameters
    ----------
    ds : xarray.Dataset
        Causal checks over seeds (``causal.nc``): ``flip_rate(seed, feature,
        target_feature, scale)``, ``pc_accuracy(seed, feature, n_pcs)`` and ``r2(seed,
        feature)``; ``reliance_a(seed)`` when present.

    Returns
    -------
    matplotlib.figure.Figure
        Left: the share of each feature's labels flipped when its test stimuli move
        ``scale`` class-mean differences towards the other class (solid), and the largest
        share of another head's labels changed by the same move (dashed). Right: test
        accuracy of a linear read-out of each feature from the top ``n_pcs`` PCs. Means
        over seeds with 95% bootstrap intervals (seeded); the legend gives each feature's
        mean R².
    """
    features = [str(f) for f in ds.feature.values]
    r2 = ds.r2.mean("seed")
    label = {f: f"{f} (R² {float(r2.sel(feature=f)):.2f})" for f in features}
    palette = dict(zip(features, sns.color_palette(n_colors=len(features)), strict=True))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.9))
    for feat in features:
        own = ds.flip_rate.sel(feature=feat, target_feature=feat)
        df = own.reset_coords(drop=True).to_dataframe(name="rate").reset_index()
        sns.lineplot(df, x="scale", y="rate", color=palette[feat], errorbar=("ci", 95),
                     seed=0, ax=left, label=label[feat], marker="o")
        others = [f for f in features if f != feat]
        if others:
            other = ds.flip_rate.sel(feature=feat, target_feature=others).max("target_feature")
            df = other.reset_coords(drop=True).to_dataframe(name="rate").reset_index()
            sns.lineplot(df, x="scale", y="rate", color=palette[feat], errorbar=None,
                         linestyle="--", ax=left, label=f"other heads, steering {feat}")
        acc = ds.pc_accuracy.sel(feature=feat).reset_coords(drop=True)
        df = acc.to_dataframe(name="accuracy").reset_index().dropna()
        sns.lineplot(df, x="n_pcs", y="accuracy", color=palette[feat], errorbar=("ci", 95),
                     seed=0, ax=right, label=label[feat])
    left.set_xlabel("steering step (class-mean differences)")
    left.set_ylabel("share of labels flipped")
    left.set_title(f"steering at {ds.attrs.get('layer', '')}")
    left.legend(fontsize="small")
    right.set_xscale("log")
    right.set_xlabel("top principal components read out")
    right.set_ylabel("test accuracy")
    title = "linear read-out from the top PCs"
    if "reliance_a" in ds and len(features) >= 2:
        title += (f"\nread-out trained where they agree follows {features[0]} on "
                  f"{float(ds.reliance_a.mean()):.0%} of conflicts")
    right.set_title(title, fontsize="medium")
    right.legend(fontsize="small")
    fig.tight_layout()
    return fig
