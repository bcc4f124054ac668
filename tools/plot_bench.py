#!/usr/bin/env python3
"""Charts for docs/benchmarks.md, from the JSON files of scripts/bench.sh.

* ``bench-decode.png``: tokens/s against tokens per step of diffusion top-k
  decoding (log y), unmask uncached / prefix / dual cache and the PyTorch
  peer, the Fast-dLLM threshold runs as stars at their tokens per forward, and
  autoregressive decoding as horizontal lines; one panel per bench_decode file.
* ``bench-kernels.png``: each CPU kernel as a share of the ceiling it is
  bounded by, measured in the same run: GEMMs and attention against the FMA
  peak, the few-row GEMM against DRAM read bandwidth, the elementwise kernels
  against L3-resident read bandwidth (best repetition of each).

    tools/plot_bench.py --decode bench-results/decode-tiny.json --decode bench-results/decode-1b.json \\
        --peer bench-results/peer-tiny.json --kernels bench-results/kernels.json --out-dir docs
"""

import argparse
import json
import os

import matplotlib

from bench_report import kernel_index  # the best repetition of each benchmark

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
    gen = next((r["gen_length"] for r in rows if r["mode"] == "diffusion"), "?")
    threads = d.get("threads", 1)
    ax.set_title(f"{name}: gen_length {gen}, {threads} thread" + ("" if threads == 1 else "s")
                 + (" (smoke)" if d.get("smoke") else ""))
    ax.set_xlabel("tokens per step (diffusion)")
    ax.set_ylabel("tokens/s (batch 1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)


def plot_decode(decodes, peers, path):
    cols = min(2, len(decodes))
    rows_n = (len(decodes) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(7.0 * cols, 7.0 * rows_n), squeeze=False)
    for i, d in enumerate(decodes):
        same = [(label, rows) for label, rows, t in peers if t == d.get("threads", 1)]
        decode_panel(axes[i // cols][i % cols], d, same)
    for j in range(len(decodes), rows_n * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("Decoding throughput on the CPU: unmask vs the PyTorch peer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_kernels(kernels, path):
    best = kernel_index(kernels)
    bars = []  # (label, share, kind)
    for name, b in best.items():
        if name.startswith("openblas"):
            continue
        if name.startswith(("gemm", "attention")):
            rows = int(name.split("rows:")[1].split("/")[0]) if "rows:" in name else None
            if rows is not None and rows < 32 and b.get("dram_gbps"):
                bars.append((name, b["GB/s"] / b["dram_gbps"], "of DRAM read"))
            elif b.get("peak_gflops") and "decode" not in name:
                bars.append((name, b["GFLOP/s"] / b["peak_gflops"], "of FMA peak"))
        elif b.get("l3_gbps"):
            bars.append((name, b["GB/s"] / b["l3_gbps"], "of L3 read"))
    colors = {"of FMA peak": "tab:green", "of DRAM read": "tab:blue", "of L3 read": "tab:orange"}
    fig, ax = plt.subplots(figsize=(11, max(4.0, 0.22 * len(bars) + 1.5)))
    ys = list(range(len(bars)))
    ax.barh(ys, [s for _, s, _ in bars], color=[colors[k] for _, _, k in bars])
    ax.set_yticks(ys)
    ax.set_yticklabels([n for n, _, _ in bars], fontsize=6.5)
    for y, (_, share, kind) in zip(ys, bars):
        ax.text(share, y, f" {share:.0%} {kind}", va="center", fontsize=6.5)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1.35)
    ax.set_xlabel("share of the ceiling measured in the same run")
    ax.invert_yaxis()
    ax.set_title("CPU kernels against their ceilings (bench_cpu_kernels)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decode", action="append", default=[])
    ap.add_argument("--loaded", action="append", default=[], help="accepted for the same inputs as bench_report")
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--kernels")
    ap.add_argument("--out-dir", default="docs")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    decodes = [load(p) for p in args.decode]
    peers = []
    for path in args.peer:
        p = load(path)
        peers.append((f"PyTorch peer, {p['threads']} thread" + ("" if p["threads"] == 1 else "s"), p["rows"],
                      p["threads"]))
    if decodes:
        path = os.path.join(args.out_dir, "bench-decode.png")
        plot_decode(decodes, peers, path)
        print(f"plot_bench: wrote {path}")
    if args.kernels:
        path = os.path.join(args.out_dir, "bench-kernels.png")
        plot_kernels(load(args.kernels), path)
        print(f"plot_bench: wrote {path}")


if __name__ == "__main__":
    main()
