#!/usr/bin/env python3
"""Charts for docs/benchmarks.md, from the JSON files of scripts/bench.sh.

* ``bench-decode.png``: tokens/s against tokens per step of diffusion top-k
  decoding (log y), unmask uncached / prefix / dual cache and the PyTorch
  peer, the Fast-dLLM threshold runs as stars at their tokens per forward, and
  autoregressive decoding as horizontal lines; one panel per bench_decode file.
* ``bench-kernels.png``: each CPU kernel's GB/s as a fraction of the copy
  bandwidth measured by bench_decode, and its GFLOP/s.

    tools/plot_bench.py --decode bench-results/decode-tiny.json --decode bench-results/decode-1b.json \\
        --peer bench-results/peer-tiny.json --kernels bench-results/kernels.json --out-dir docs
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

UNMASK_COLOR, PEER_COLORS = "tab:blue", ["tab:red", "tab:orange", "tab:purple"]


def load(path):
    with open(path) as f:
        return json.load(f)


def top_k(rows, cache="none"):
    pts = sorted((r["tokens_per_step"], r["tokens_per_second"]) for r in rows
                 if r["mode"] == "diffusion" and r["policy"] == "top_k" and r["cache"] == cache)
    return [p[0] for p in pts], [p[1] for p in pts]


def decode_panel(ax, d, peers):
    """peers: [(label, rows)], one per peer run."""
    rows = d["rows"]
    diff_models = sorted({r["model"] for r in rows if r["mode"] == "diffusion"})
    name = diff_models[0] if diff_models else "?"
    models = {x["model"] for x in rows}
    styles = {"none": ("-", "o", "unmask"), "prefix": ("--", "s", "unmask, prefix cache"),
              "dual": (":", "^", "unmask, dual cache")}
    for cache, (ls, marker, label) in styles.items():
        x, y = top_k(rows, cache)
        if x:
            ax.plot(x, y, ls, marker=marker, color=UNMASK_COLOR, label=label + " (top-k)")
    sources = [(rows, UNMASK_COLOR, "unmask", "-.")]
    for i, (label, peer_rows) in enumerate(peers):
        peer = [r for r in peer_rows if r["model"] in models]
        color = PEER_COLORS[i % len(PEER_COLORS)]
        x, y = top_k(peer)
        if x:
            ax.plot(x, y, "-", marker="o", color=color, label=f"{label} (top-k)")
        sources.append((peer, color, label, (0, (1, 2))))
    for source, color, who, ar_style in sources:
        for r in source:
            if r["mode"] == "diffusion" and r["policy"] == "threshold" and r["cache"] == "none":
                ax.plot([r["tokens_per_forward"]], [r["tokens_per_second"]], "*", markersize=13, color=color,
                        markeredgecolor="black", label=f"{who}, threshold {r['threshold']:g} (at its tokens/forward)")
            if r["mode"] == "autoregressive":
                ax.axhline(r["tokens_per_second"], color=color, linestyle=ar_style, linewidth=1.5,
                           label=f"{who}, autoregressive ({r['model']})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ks = sorted({r["tokens_per_step"] for r in rows if r["policy"] == "top_k"})
    if ks:
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
    gen = rows[0]["gen_length"] if rows else "?"
    ax.set_title(f"{name}: gen_length {gen}" + (" (smoke)" if d.get("smoke") else ""))
    ax.set_xlabel("tokens per step (diffusion)")
    ax.set_ylabel("tokens/s (batch 1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)


def plot_decode(decodes, peers, path):
    fig, axes = plt.subplots(1, len(decodes), figsize=(7.0 * len(decodes), 7.0), squeeze=False)
    for ax, d in zip(axes[0], decodes):
        decode_panel(ax, d, peers)
    fig.suptitle("Decoding throughput on the CPU: unmask vs the PyTorch peer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_kernels(kernels, bandwidth, path):
    bench = [b for b in kernels["benchmarks"] if b.get("run_type") != "aggregate"]
    label = lambda b: b["name"].replace("/real_time", "").replace("BM_", "")  # noqa: E731
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    gb = [b for b in bench if b.get("GB/s")]
    if gb and bandwidth:
        frac = [b["GB/s"] / bandwidth for b in gb]
        bars = left.barh([label(b) for b in gb], frac, color=UNMASK_COLOR)
        for bar, b, f in zip(bars, gb, frac):
            left.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {f:.0%} ({b['GB/s']:.1f} GB/s)",
                      va="center", fontsize=8)
        left.axvline(1.0, color="black", linestyle="--", linewidth=1)
        left.set_xlim(0, max(1.15, max(frac) * 1.4))
        left.set_xlabel(f"GB/s / copy bandwidth ({bandwidth:.1f} GB/s)")
        left.invert_yaxis()
    left.set_title("memory traffic")
    fl = [b for b in bench if b.get("GFLOP/s")]
    if fl:
        bars = right.barh([label(b) for b in fl], [b["GFLOP/s"] for b in fl], color="tab:green")
        for bar, b in zip(bars, fl):
            right.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {b['GFLOP/s']:.1f}", va="center",
                       fontsize=8)
        right.set_xlim(0, max(b["GFLOP/s"] for b in fl) * 1.25)
        right.set_xlabel("GFLOP/s")
        right.invert_yaxis()
    right.set_title("arithmetic")
    fig.suptitle("CPU kernels (bench_cpu_kernels)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decode", action="append", default=[])
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--kernels")
    ap.add_argument("--out-dir", default="docs")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    decodes = [load(p) for p in args.decode]
    peers = []
    for path in args.peer:
        p = load(path)
        peers.append((f"PyTorch peer, {p['threads']} thread" + ("" if p["threads"] == 1 else "s"), p["rows"]))
    if decodes:
        path = os.path.join(args.out_dir, "bench-decode.png")
        plot_decode(decodes, peers, path)
        print(f"plot_bench: wrote {path}")
    if args.kernels:
        bandwidth = max((d["bandwidth_gbps"] for d in decodes), default=None)
        path = os.path.join(args.out_dir, "bench-kernels.png")
        plot_kernels(load(args.kernels), bandwidth, path)
        print(f"plot_bench: wrote {path}")


if __name__ == "__main__":
    main()
