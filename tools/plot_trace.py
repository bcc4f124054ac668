#!/usr/bin/env python3
"""Draw decode traces (unmask/decode/decode_trace.hpp, docs/trace.md) as images.

Each trace becomes one panel: the generated positions across, the steps (model
calls) down, step 0 at the top.  A cell is coloured by the confidence of the
token committed there at that step (one colour bar for the figure); positions
committed at an earlier step and still holding their token are light grey, so
the picture shows the canvas filling up.  Solid vertical lines mark block
boundaries, dashed horizontal ones the steps where the decoder moves to the
next block.  Each panel's title holds the trace's label (else its summary),
its settings in words, and its model calls and tokens per call.  Traces whose
decoder reports no confidences are drawn in one grey and say so.

    .venv-tools/bin/python tools/plot_trace.py a.jsonl b.jsonl c.jsonl -o out.png

Needs matplotlib and numpy: Debian's python3-matplotlib (3.6.3) and
python3-numpy (1.24.2), which tools/setup_venv.sh installs and .venv-tools
sees (--system-site-packages).
"""

import argparse
import json
import math
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

EARLIER = 0.86  # grey level of positions committed before the step
UNKNOWN = 0.45  # grey level of a commit whose confidence is not reported


def read_trace(path):
    """The header and the step lines of one trace file, checked."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
    except OSError as e:
        sys.exit(f"plot_trace: cannot read {path}: {e.strerror}")
    if not lines:
        sys.exit(f"plot_trace: {path} is empty")
    try:
        header = json.loads(lines[0])
        steps = [json.loads(line) for line in lines[1:]]
    except json.JSONDecodeError as e:
        sys.exit(f"plot_trace: {path}: line {e.lineno} is not JSON: {e.msg}")
    if header.get("trace") != "unmask-decode" or header.get("version") != 1:
        sys.exit(f"plot_trace: {path} is not an unmask decode trace (version 1)")
    return header, steps


def grids(header, steps):
    """(steps, gen) arrays: the confidence of each commit (NaN elsewhere),
    whether a cell was committed in that step, and whether it holds a token
    committed earlier."""
    prompt, gen = header["prompt_length"], header["gen_length"]
    n = len(steps)
    confidence = np.full((n, gen), np.nan)
    committed = np.zeros((n, gen), dtype=bool)
    earlier = np.zeros((n, gen), dtype=bool)
    filled = np.zeros(gen, dtype=bool)
    for i, step in enumerate(steps):
        earlier[i] = filled
        values = step.get("confidences")
        for k, p in enumerate(step["positions"]):
            x = p - prompt
            if not 0 <= x < gen:
                continue
            committed[i, x] = True
            if values is not None and values[k] is not None:
                confidence[i, x] = values[k]
            filled[x] = True
        for p in step.get("remasked", []):
            if 0 <= p - prompt < gen:
                filled[p - prompt] = False
    return confidence, committed, earlier


def block_lines(header):
    """Generated-part x coordinates of the block boundaries inside it."""
    prompt, gen = header["prompt_length"], header["gen_length"]
    length, origin = header["block_length"], header["block_origin"]
    if length <= 0:
        return []
    first = math.floor((prompt - origin) / length) + 1
    xs = []
    b = first
    while origin + b * length - prompt < gen:
        x = origin + b * length - prompt
        if x > 0:
            xs.append(x - 0.5)
        b += 1
    return xs


def draw(ax, header, steps, cmap, vmin, vmax, path):
    confidence, committed, earlier = grids(header, steps)
    n, gen = confidence.shape
    reported = any(s.get("confidences") is not None for s in steps)
    background = np.ones((n, gen, 3))
    background[earlier & ~committed] = EARLIER
    background[committed & np.isnan(confidence)] = UNKNOWN
    ax.imshow(background, aspect="auto", interpolation="nearest", extent=(-0.5, gen - 0.5, n - 0.5, -0.5))
    image = ax.imshow(np.ma.masked_invalid(confidence), aspect="auto", interpolation="nearest", cmap=cmap,
                      vmin=vmin, vmax=vmax, extent=(-0.5, gen - 0.5, n - 0.5, -0.5))
    for x in block_lines(header):
        ax.axvline(x, color="black", linewidth=1.2)
    for i in range(1, n):
        if steps[i]["block"] != steps[i - 1]["block"]:
            ax.axhline(i - 0.5, color="black", linewidth=0.8, linestyle="--")
    tokens = sum(len(s["positions"]) for s in steps)
    title = header.get("label") or header.get("summary") or path
    lines = [title]
    if header.get("label") and header.get("summary"):
        lines.append(header["summary"])
    # An ancestral step may reuse the last call's logits: its lines are steps, not model calls.
    unit = "steps" if header.get("settings", {}).get("mode") == "ancestral" else "model calls"
    per = "step" if unit == "steps" else "call"
    facts = f"{n} {unit}, {tokens / n:.2f} tokens per {per}" if n else "no steps"
    if not reported:
        facts += ", confidences not reported"
    lines.append(facts)
    ax.set_title("\n".join(textwrap.fill(line, 64) for line in lines), fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generated position")
    ax.set_ylabel("step (model call)")
    ax.set_xlim(-0.5, gen - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    return image


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("traces", nargs="+", help="trace files (JSON lines), one panel each, left to right")
    p.add_argument("-o", "--out", required=True, help="image to write (.png, .svg, .pdf)")
    p.add_argument("--title", default="", help="a title over the whole figure")
    p.add_argument("--dpi", type=int, default=130)
    p.add_argument("--cmap", default="viridis", help="matplotlib colour map for the confidences")
    args = p.parse_args()

    traces = [(path, *read_trace(path)) for path in args.traces]
    values = [c for _, _, steps in traces for s in steps for c in (s.get("confidences") or []) if c is not None]
    vmin, vmax = 0.0, 1.0
    if values and (min(values) < 0.0 or max(values) > 1.0):  # a metric other than probabilities
        vmin, vmax = min(values), max(values)
    metrics = sorted({str(h.get("settings", {}).get("confidence", "?")) for _, h, steps in traces
                      if any(s.get("confidences") is not None for s in steps)})

    width = 3.9 * len(traces) + 1.0
    fig, axes = plt.subplots(1, len(traces), figsize=(width, 5.0), squeeze=False, constrained_layout=True)
    image = None
    for ax, (path, header, steps) in zip(axes[0], traces):
        image = draw(ax, header, steps, args.cmap, vmin, vmax, path)
    bar = fig.colorbar(image, ax=list(axes[0]), shrink=0.9, pad=0.01)
    bar.set_label("confidence of the committed token" + (f" ({', '.join(metrics)})" if metrics else ""))
    if args.title:
        fig.suptitle(args.title)
    fig.savefig(args.out, dpi=args.dpi)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
