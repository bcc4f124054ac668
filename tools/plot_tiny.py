#!/usr/bin/env python3
"""Plot the held-out loss of the two tiny models against training epochs.

Reads ``models/tiny-llada/train_log.json`` and ``models/tiny-ar/train_log.json``
(written by tools/train_tiny.py) and writes ``docs/tiny-models.png``:

* masked diffusion (tiny-llada): the 1/t-weighted masked cross-entropy on the
  held-out windows with fixed, pre-drawn (t, mask) pairs -- the negative ELBO,
  an upper bound on the NLL per token;
* autoregressive (tiny-ar): the mean next-token NLL per token.

Both in nats per token.  Usage:

    .venv-tools/bin/python tools/plot_tiny.py [--out docs/tiny-models.png]
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--diffusion-log", default=os.path.join(REPO_ROOT, "models", "tiny-llada", "train_log.json"))
    p.add_argument("--ar-log", default=os.path.join(REPO_ROOT, "models", "tiny-ar", "train_log.json"))
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "docs", "tiny-models.png"))
    a = p.parse_args()

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    series = [
        (a.diffusion_log, "tiny-llada (masked diffusion): -ELBO, upper bound on NLL", "tab:blue", "o"),
        (a.ar_log, "tiny-ar (autoregressive): NLL", "tab:orange", "s"),
    ]
    for path, label, color, marker in series:
        with open(path) as f:
            log = json.load(f)
        ev = [e for e in log["evals"] if e["step"] > 0]
        xs = [e["epoch"] for e in ev]
        ys = [e["heldout_loss"] for e in ev]
        ax.plot(xs, ys, color=color, marker=marker, markersize=3.5, linewidth=1.4, label=label)
        ends = [e for e in ev if e["epoch_end"]]
        ax.plot([e["epoch"] for e in ends], [e["heldout_loss"] for e in ends], linestyle="none",
                marker=marker, markersize=7, color=color)
        last = ev[-1]
        ax.annotate(f"{last['heldout_loss']:.3f}", (last["epoch"], last["heldout_loss"]),
                    textcoords="offset points", xytext=(6, 0), va="center", fontsize=8, color=color)
    n_params = log["n_params"]
    ax.set_xlabel("epoch over the training split (large markers: end of epoch)")
    ax.set_ylabel("held-out loss (nats / token)")
    ax.set_title(f"Tiny models on the KJV Bible ({n_params / 1e6:.2f}M params each, same data and tokens)",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8.5)
    fig.tight_layout()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    fig.savefig(a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
