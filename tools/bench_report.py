#!/usr/bin/env python3
"""Write docs/benchmarks.md from the JSON files of scripts/bench.sh.

Every number in the report comes from the JSON files named on the command
line; nothing is typed in.  Inputs:

* ``--kernels FILE``: ``bench_cpu_kernels --benchmark_out_format=json`` output:
  the ceilings measured in the same run (in its context) and every kernel;
  with ``--benchmark_repetitions`` the best repetition of each counts;
* ``--decode FILE`` (repeatable): ``bench_decode --json`` output, one file per
  model and thread count, with the ceilings that run measured;
* ``--loaded FILE`` (repeatable): ``bench_decode --json`` of runs made while a
  busy loop competed for a core;
* ``--peer FILE`` (repeatable): ``tools/peers/pytorch_llada.py --json`` output,
  compared with the unmask run of the same model and thread count;
* ``--gpu-json FILE`` (optional, repeatable): GPU ``bench_decode`` output;
* ``--commit SHA``, ``--load``: the commit measured, the load average.

Machine facts (CPU model, cores, memory) are read from /proc on the machine
running this script, which is the one that ran the benchmarks when called from
scripts/bench.sh.
"""

import argparse
import datetime
import json
import os
import platform
import re

# The CPU-engine issue's goals (benchmarks, ratios measured in one run).
GOAL_GEMM_1 = 0.85        # GEMM >= 85% of fp32 peak at >= 64 rows, 1 thread
GOAL_GEMM_ALL = 0.75      # ... >= 75% on all threads
GOAL_BF16 = 0.75          # bf16 mode >= 75% of the bf16 dot-product peak
GOAL_GEMV = 0.80          # one-row path >= 80% of DRAM read bandwidth
GOAL_AR_1B = 1.3          # AR decoding of the 1B preset <= 1.3x its weight-streaming floor
GOAL_ATTENTION = 0.40     # attention >= 40% of fp32 peak at canvas >= 256
GOAL_FWD_1B = 1.4         # diffusion forward, 1B, >= 32 rows: <= 1.4x compute floor
GOAL_FWD_TINY = 2.0       # ... tiny: <= 2x
GOAL_AR_TINY = 2.0        # AR tiny <= 2x the L3 read time of its weights
GOAL_OUTSIDE_GEMM = 0.15  # ... and under 15% of a token outside the GEMMs
GOAL_PEER_FORWARD = 3.0   # >= 3x the PyTorch peer per diffusion forward
GOAL_PEER_TOKEN = 10.0    # >= 10x per autoregressive token


def load(path):
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------

def num(x, digits=None):
    """Readable number: about three significant digits, thousands separated."""
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    if digits is not None:
        return f"{x:,.{digits}f}"
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2g}"


def pct(x):
    return "-" if x is None else f"{100 * x:.0f}%"


def table(header, rows, text_columns=1):
    """Markdown table; the first text_columns columns left-aligned, the rest (numbers) right-aligned."""
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def threads_label(n):
    return f"{n} thread" + ("" if n == 1 else "s")


def met(ok):
    return "**met**" if ok else "**not met**"


# --------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------

def machine():
    cpu, logical = None, os.cpu_count()
    physical = set()
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            phys = None
            for line in f:
                if line.startswith("model name") and cpu is None:
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    physical.add((phys, line.split(":", 1)[1].strip()))
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024 / 2**30
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    cores = f"{logical} logical CPUs" + (f" ({len(physical)} cores)" if physical else "")
    isa = ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16") if f in flags) or "no AVX"
    return cpu, cores, (f"{mem:.0f} GiB" if mem else "unknown memory"), isa


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------

def kernel_index(kernels):
    """name -> the best repetition (highest GFLOP/s or GB/s) of each benchmark."""
    best = {}
    for b in kernels["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        name = b.get("run_name", b["name"]).replace("/real_time", "")
        score = b.get("GFLOP/s") or b.get("GB/s") or 0
        if name not in best or score > (best[name].get("GFLOP/s") or best[name].get("GB/s") or 0):
            best[name] = b
    return best


def ceilings_section(ctx):
    rows = []
    for key in sorted(ctx):
        m = re.fullmatch(r"fma_peak_gflops_(\w+)_1", key)
        if m:
            level = m.group(1)
            rows.append([f"fp32 FMA peak, {level}", num(float(ctx[key])), num(float(ctx[f"fma_peak_gflops_{level}_all"])),
                         "GFLOP/s"])
    bf1, bfa = float(ctx.get("bf16_peak_gflops_1", 0)), float(ctx.get("bf16_peak_gflops_all", 0))
    rows.append(["bf16 dot-product peak (vdpbf16ps)", num(bf1) if bf1 else "no AVX512-BF16",
                 num(bfa) if bfa else "-", "GFLOP/s"])
    rows.append(["DRAM read (1 GiB per thread)", num(float(ctx["dram_read_gbps_1"])), num(float(ctx["dram_read_gbps_all"])),
                 "GB/s"])
    rows.append(["L3-resident read (4 MiB per thread)", num(float(ctx["l3_read_gbps_1"])),
                 num(float(ctx["l3_read_gbps_all"])), "GB/s"])
    t = ctx.get("unmask_threads", "?")
    return ["## Ceilings", "",
            f"Measured by `bench_cpu_kernels` at its start (`bench/ceilings.hpp`): multiply-add chains on registers "
            f"per instruction set, and array reads; best of several repetitions, on one thread and on all {t}. "
            "Compute-bound benchmarks below are divided by an FMA peak measured again right after each of them "
            "(the machine's speed drifts within a run).", "",
            table(["ceiling", "1 thread", f"{t} threads", "unit"], rows), ""]


def parse_gemm(name):
    m = re.fullmatch(r"gemm/(\w+)/(\w+)/threads:(\d+)/rows:(\d+)/(\w+)", name)
    return None if not m else {"level": m.group(1), "mode": m.group(2), "threads": int(m.group(3)),
                               "rows": int(m.group(4)), "shape": m.group(5)}


SHAPES = {"qkv": "Q/K/V 6144 x 2048", "attn_out": "attn_out 2048 x 2048", "gate_up": "gate/up 11264 x 2048",
          "ff_out": "ff_out 2048 x 5632"}


def gemm_sections(index, ctx):
    gemms = [(parse_gemm(n), b) for n, b in index.items() if parse_gemm(n)]
    best_level = ctx.get("unmask_isa", "avx2")
    fp32_level = "avx512" if best_level == "avx512_bf16" else best_level
    threads = sorted({g["threads"] for g, _ in gemms})
    main = [(g, b) for g, b in gemms if g["mode"] == "f32" and g["level"] == fp32_level]
    rows_list = sorted({g["rows"] for g, _ in main})
    header = ["shape", "rows"]
    for t in threads:
        header += [f"GFLOP/s ({threads_label(t)})", "of peak", "OpenBLAS", "unmask / OpenBLAS"]
    body, summary = [], {}
    for shape in SHAPES:
        for rows in rows_list:
            if rows < 32:
                continue
            line = [SHAPES[shape], str(rows)]
            for t in threads:
                b = next((b for g, b in main if g["shape"] == shape and g["rows"] == rows and g["threads"] == t), None)
                peer = index.get(f"openblas/sgemm/f32/threads:{t}/rows:{rows}/{shape}")
                if not b:
                    line += ["-"] * 4
                    continue
                share = b["GFLOP/s"] / b["peak_gflops"] if b.get("peak_gflops") else None
                summary.setdefault(t, []).append((share, rows, shape))
                line += [num(b["GFLOP/s"]), pct(share), num(peer["GFLOP/s"]) if peer else "-",
                         f"{num(b['GFLOP/s'] / peer['GFLOP/s'])}x" if peer else "-"]
            body.append(line)
    text = ["## GEMM", "",
            f"y = x W^T with bf16 weights packed once (`unmask/cpu/packed_matrix.hpp`), fp32 activations, level "
            f"`{fp32_level}`, on the ~1B preset's projections (fused as the forward pass runs them). `of peak`: over "
            "the FMA peak measured right after the benchmark on as many threads. OpenBLAS: `cblas_sgemm` on the same "
            "product with fp32 weights (it has no bf16 GEMM), same threads.", "",
            table(header, body, 2), ""]

    # The one-row path against DRAM read bandwidth.
    body = []
    for shape in SHAPES:
        for rows in [r for r in rows_list if r < 32]:
            line = [SHAPES[shape], str(rows)]
            for t in threads:
                b = next((b for g, b in main if g["shape"] == shape and g["rows"] == rows and g["threads"] == t), None)
                peer = index.get(f"openblas/sgemm/f32/threads:{t}/rows:{rows}/{shape}")
                line += [num(b["GB/s"]) if b else "-",
                         pct(b["GB/s"] / b["dram_gbps"]) if b and b.get("dram_gbps") else "-",
                         num(peer["GB/s"]) if peer else "-"]
            body.append(line)
    header = ["shape", "rows"]
    for t in threads:
        header += [f"weights GB/s ({threads_label(t)})", "of DRAM read", "OpenBLAS GB/s (fp32 weights)"]
    text += ["### Few rows: the bandwidth-bound path", "",
             "Weights rotate through copies several times larger than the L3, so every call streams them from "
             "DRAM; the ceiling is the DRAM read bandwidth measured at the start of the run on as many threads.", "",
             table(header, body, 2), ""]

    # Other levels and the bf16 mode on the square shape.
    other = [(g, b) for g, b in gemms if g["shape"] == "attn_out" and (g["mode"] == "bf16" or g["level"] != fp32_level)]
    body = []
    for g, b in sorted(other, key=lambda x: (x[0]["level"], x[0]["mode"], x[0]["threads"], x[0]["rows"])):
        if g["rows"] < 32:
            continue
        native = g["mode"] == "bf16" and g["level"] == "avx512_bf16"
        body.append([g["level"], g["mode"] + (" (vdpbf16ps)" if native else " (emulated with FMAs)" if g["mode"] == "bf16" else ""),
                     str(g["threads"]), str(g["rows"]), num(b["GFLOP/s"]),
                     pct(b["GFLOP/s"] / b["peak_gflops"]) if b.get("peak_gflops") else "-",
                     "bf16 dot" if native else "fp32 FMA of " + g["level"]])
    if body:
        text += ["### Other levels and the bf16 mode", "",
                 "attn_out (2048 x 2048). The bf16 mode rounds activations to bf16 at the GEMM input and multiplies "
                 "bf16 pairs with fp32 accumulation: one vdpbf16ps per pair where the CPU has AVX512-BF16, two fused "
                 "multiply-adds per pair elsewhere (the same products and order, so the same results except for "
                 "subnormals).", "",
                 table(["level", "mode", "threads", "rows", "GFLOP/s", "of peak", "peak"], body, 2), ""]
    return text, summary


def attention_section(index):
    body, summary = [], []
    for name, b in sorted(index.items()):
        m = re.fullmatch(r"attention/(\w+)/threads:(\d+)/(\w+)", name)
        if not m:
            continue
        level, t, case = m.group(1), int(m.group(2)), m.group(3)
        share = b["GFLOP/s"] / b["peak_gflops"] if b.get("peak_gflops") else None
        body.append([case, level, str(t), num(b["real_time"]) + " " + b["time_unit"], num(b["GFLOP/s"]), pct(share)])
        summary.append((case, level, t, share))
    return ["## Attention", "",
            "Fused flash-style attention (`unmask/cpu/kernels/attention.inl`): `1b_*` 16 heads of 128, `tiny_*` 4 heads "
            "of 64; `full_N` an N-token canvas, `block32_512` block-causal with blocks of 32, `decode_N` one query "
            "against N cached keys. GFLOP/s count the visible query-key pairs (4 x pairs x head_dim).", "",
            table(["case", "level", "threads", "time", "GFLOP/s", "of FMA peak"], body, 2), ""], summary


def elementwise_section(index):
    body = []
    for name, b in sorted(index.items()):
        m = re.fullmatch(r"(rmsnorm|swiglu|rope|embedding)/(\w+)/threads:(\d+)/(\w+)", name)
        if not m:
            continue
        body.append([f"{m.group(1)} {m.group(4)}", m.group(2), m.group(3), num(b["real_time"]) + " " + b["time_unit"],
                     num(b["GB/s"]), pct(b["GB/s"] / b["l3_gbps"]) if b.get("l3_gbps") else "-"])
    return ["## Elementwise kernels", "",
            "Their data sits in the L3 during a forward pass, so the ceiling is the L3-resident read bandwidth "
            "(bytes read and written count).", "",
            table(["kernel", "level", "threads", "time", "GB/s", "of L3 read"], body, 2), ""]


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

def setting(r):
    if r["mode"] == "forward":
        return f"one forward over {r['canvas_rows']} rows (every row's logits)"
    if r["mode"] == "autoregressive":
        return "autoregressive, greedy, K/V cache"
    loop = "diffusion, resident (CUDA graph)" if r["mode"] == "resident" else "diffusion"
    if r["policy"] == "threshold":
        return f"{loop}, Fast-dLLM threshold {r['threshold']:g}"
    return f"{loop}, top-k {r['tokens_per_step']} per step"


def row_key(r):
    return (r["model"], r["mode"], r["policy"], r["tokens_per_step"], r.get("cache", "none"))


def peer_for(peers, d):
    """The peer run of the same thread count (rows keyed like bench_decode's)."""
    for p in peers:
        if p["threads"] == d["threads"]:
            return {row_key(r): r for r in p["rows"]}
    return None


def decode_model(d):
    names = [r["model"] for r in d["rows"] if r["mode"] == "diffusion"]
    return names[0] if names else d["rows"][0]["model"]


def decode_section(d, peers):
    c = d.get("ceilings", {})
    peer = peer_for(peers, d)
    model = decode_model(d)
    rows = [r for r in d["rows"] if r["cache"] == "none"]
    header = ["setting", "tokens/s", "forwards", "ms/forward", "floor ms", "x floor", "CPU / wall"]
    if any(r.get("gemm_share") is not None for r in rows):
        header.append("in GEMMs")
    if peer:
        header += ["peer ms/forward", "unmask / peer (per forward)"]
    body = []
    for r in rows:
        line = [setting(r), num(r["tokens_per_second"]) if r["tokens"] else "-", num(r["forwards"]),
                num(r["ms_per_forward"]), num(r["floor_ms_per_forward"]) + (" (weights)" if r["floor_kind"] == "weights" else ""),
                f"{num(r['over_floor'])}x", num(r["cpu_s"] / r["wall_s"]) if r["wall_s"] else "-"]
        if "in GEMMs" in header:
            line.append(pct(r.get("gemm_share")))
        if peer:
            p = peer.get(row_key(r))
            line += [num(p["ms_per_forward"]) if p else "-",
                     f"{num(p['ms_per_forward'] / r['ms_per_forward'])}x" if p else "-"]
        body.append(line)
    facts = (f"{threads_label(d['threads'])}, level `{d['isa']}`, {d['compute']} GEMMs; gen_length "
             f"{next((r['gen_length'] for r in rows if r['mode'] == 'diffusion'), '-')}, block "
             f"{next((r['block_length'] for r in rows if r['mode'] == 'diffusion'), '-')}, prompt {d['prompt_tokens']} "
             f"tokens. Ceilings of this run: FMA peak {num(c.get('fma_peak_gflops'))} GFLOP/s, DRAM read "
             f"{num(c.get('dram_read_gbps'))} GB/s, L3 read {num(c.get('l3_read_gbps'))} GB/s. Resident weights "
             f"{num(d['resident_weight_bytes'] / 2**20)} MiB (file {num(d['file_weight_bytes'] / 2**20)} MiB), peak RSS "
             f"{num(d['peak_rss_bytes'] / 2**20)} MiB")
    if d.get("smoke"):
        facts += "; smoke run (sizes too small to measure)"
    return [f"### {model}, {threads_label(d['threads'])}", "", facts + ".", "", table(header, body), ""]


def cache_section(decodes):
    body = []
    for d in decodes:
        base = {row_key(r)[:4]: r for r in d["rows"] if r["cache"] == "none" and r["mode"] == "diffusion"}
        for r in d["rows"]:
            if r["mode"] != "diffusion" or r["cache"] == "none":
                continue
            b = base.get(row_key(r)[:4])
            speedup = r["tokens_per_second"] / b["tokens_per_second"] if b else None
            agree = None if r["agreement"] is None else f"{100 * r['agreement']:.1f}%"
            body.append([r["model"], str(d["threads"]), setting(r).replace("diffusion, ", ""), r["cache"],
                         num(r["tokens_per_second"]), f"{num(speedup)}x" if speedup else "-", agree or "-"])
    return ["## K/V caches", "",
            "Prefix and dual caches (Fast-dLLM) against uncached decoding of the same policy and tokens per step; "
            "agreement is the share of generated tokens equal to the uncached run's.", "",
            table(["model", "threads", "policy", "cache", "tokens/s", "speedup over none", "agreement"], body, 4), ""]


def loaded_section(loaded):
    if not loaded:
        return []
    by_threads = {d["threads"]: {row_key(r): r for r in d["rows"]} for d in loaded}
    counts = sorted(by_threads)
    keys = [row_key(r) for r in loaded[0]["rows"] if r["cache"] == "none"]
    body = []
    for k in keys:
        line = [setting(by_threads[counts[0]][k])]
        for t in counts:
            r = by_threads[t].get(k)
            line += [num(r["tokens_per_second"]) if r else "-", num(r["cpu_s"] / r["wall_s"]) if r else "-"]
        if len(counts) > 1:
            a, b = by_threads[counts[0]].get(k), by_threads[counts[-1]].get(k)
            line.append(f"{num(b['tokens_per_second'] / a['tokens_per_second'])}x" if a and b else "-")
        body.append(line)
    header = ["setting"]
    for t in counts:
        header += [f"tokens/s ({threads_label(t)})", "CPU / wall"]
    if len(counts) > 1:
        header.append(f"{counts[-1]} threads / 1")
    return ["## A loaded machine", "",
            "The tiny models (gen_length 64) while a shell busy loop keeps one core busy for the whole run: the "
            "pool's workers spin about 50 us and then sleep, and chunks are taken from a shared counter, so a "
            "descheduled thread holds up at most the chunk it has.", "", table(header, body), ""]


def forward_goal_rows(decodes):
    out = []
    for d in decodes:
        for r in d["rows"]:
            if r["mode"] == "forward" and not d.get("smoke"):
                out.append((decode_model(d), d["threads"], r))
    return out


# --------------------------------------------------------------------------
# Goals
# --------------------------------------------------------------------------

def goals_section(gemm_summary, index, attention, decodes, peers, ctx):
    text = ["## Goals of the CPU-engine issue", "",
            "Each goal with the figure this run measured; ratios within this run."]
    # GEMM
    for t, items in sorted(gemm_summary.items()):
        big = [x for x in items if x[1] >= 64 and x[0] is not None]
        if not big:
            continue
        goal = GOAL_GEMM_1 if t == 1 else GOAL_GEMM_ALL
        lo = min(big)
        text.append(f"- GEMM >= {pct(goal)} of the fp32 peak at 64 rows or more, {threads_label(t)}: "
                    f"{pct(lo[0])} (worst: {lo[1]} rows, {lo[2]}) to {pct(max(big)[0])}: "
                    f"{met(lo[0] >= goal)} on {sum(x[0] >= goal for x in big)} of {len(big)} shapes.")
    bf = [b for n, b in index.items() if (g := parse_gemm(n)) and g["mode"] == "bf16" and g["level"] == "avx512_bf16"
          and g["rows"] >= 64]
    if bf:
        shares = [b["GFLOP/s"] / b["peak_gflops"] for b in bf]
        text.append(f"- bf16 mode >= {pct(GOAL_BF16)} of the bf16 dot peak: {pct(min(shares))} to {pct(max(shares))}: "
                    f"{met(min(shares) >= GOAL_BF16)}.")
    else:
        text.append(f"- bf16 mode >= {pct(GOAL_BF16)} of the bf16 dot peak: not measurable here (this CPU has no "
                    "AVX512-BF16; the mode runs, emulated, and is tested).")
    # GEMV
    gemv = [(g, b) for n, b in index.items() if (g := parse_gemm(n)) and g["rows"] == 1 and g["mode"] == "f32"
            and b.get("dram_gbps")]
    for t in sorted({g["threads"] for g, _ in gemv}):
        shares = [b["GB/s"] / b["dram_gbps"] for g, b in gemv if g["threads"] == t]
        text.append(f"- One-row path >= {pct(GOAL_GEMV)} of DRAM read bandwidth, {threads_label(t)}: "
                    f"{pct(min(shares))} to {pct(max(shares))}: {met(min(shares) >= GOAL_GEMV)}.")
    # Attention
    fp32_level = "avx512" if ctx.get("unmask_isa") == "avx512_bf16" else ctx.get("unmask_isa", "avx2")
    att = [(c, lvl, t, s) for c, lvl, t, s in attention
           if s is not None and "decode" not in c and "tiny" not in c and lvl == fp32_level]
    if att:
        best = {}
        for c, lvl, t, s in att:
            best.setdefault(t, []).append((s, c, lvl))
        for t, items in sorted(best.items()):
            top = items
            lo = min(top)
            text.append(f"- Attention >= {pct(GOAL_ATTENTION)} of the fp32 peak at canvases of 256 and more, "
                        f"{threads_label(t)} ({lo[2]}): {pct(lo[0])} ({lo[1]}) to {pct(max(top)[0])}: "
                        f"{met(lo[0] >= GOAL_ATTENTION)}.")
    # Forwards
    for model, t, r in forward_goal_rows(decodes):
        tiny = not model.startswith("random-")
        goal = GOAL_FWD_TINY if tiny else GOAL_FWD_1B
        if not tiny and r["canvas_rows"] < 32:
            continue
        text.append(f"- Diffusion forward of {model}, {r['canvas_rows']} rows, {threads_label(t)}: "
                    f"{num(r['over_floor'])}x its compute floor (goal <= {goal:g}x): {met(r['over_floor'] <= goal)}.")
    # AR
    for d in decodes:
        if d.get("smoke"):
            continue
        for r in d["rows"]:
            if r["mode"] != "autoregressive":
                continue
            tiny = not r["model"].startswith("random-")
            goal = GOAL_AR_TINY if tiny else GOAL_AR_1B
            what = "the L3 read time of its weights" if tiny else "its weight-streaming floor (DRAM)"
            line = (f"- Autoregressive decoding of {r['model']}, {threads_label(d['threads'])}: "
                    f"{num(r['over_floor'])}x {what} (goal <= {goal:g}x): {met(r['over_floor'] <= goal)}")
            if tiny and r.get("gemm_share") is not None:
                outside = 1 - r["gemm_share"]
                line += (f"; outside the GEMMs {pct(outside)} of a token (goal < {pct(GOAL_OUTSIDE_GEMM)}): "
                         f"{met(outside < GOAL_OUTSIDE_GEMM)}")
            text.append(line + ".")
    # Peer
    for d in decodes:
        peer = peer_for(peers, d)
        if not peer or d.get("smoke"):
            continue
        fwd, tok = [], []
        for r in d["rows"]:
            p = peer.get(row_key(r))
            if not p or r["cache"] != "none":
                continue
            (tok if r["mode"] == "autoregressive" else fwd).append(p["ms_per_forward"] / r["ms_per_forward"])
        if fwd:
            text.append(f"- Against the PyTorch peer per diffusion forward, {threads_label(d['threads'])}: "
                        f"{num(min(fwd))}x to {num(max(fwd))}x (goal >= {GOAL_PEER_FORWARD:g}x): "
                        f"{met(min(fwd) >= GOAL_PEER_FORWARD)}.")
        if tok:
            text.append(f"- Against the PyTorch peer per autoregressive token, {threads_label(d['threads'])}: "
                        f"{num(min(tok))}x (goal >= {GOAL_PEER_TOKEN:g}x): {met(min(tok) >= GOAL_PEER_TOKEN)}.")
    return text + [""]


def gpu_section(gpu_files):
    text = ["## GPU", ""]
    if not gpu_files:
        return text + ["No GPU numbers in this report: the CUDA backend and the GPU benchmarks (`bench_cuda_kernels`, "
                       "`bench_decode_cuda`) are built in CI but no GPU was available for this run. On a GPU machine "
                       "`scripts/bench.sh --gpu` runs them, and `tools/bench_report.py --gpu-json` adds the rows here.",
                       ""]
    for path in gpu_files:
        d = load(path)
        text += [f"From `{os.path.basename(path)}`.", ""]
        rows = d["rows"]
        body = [[setting(r), num(r["tokens_per_second"]), num(r["forwards"]), num(r["ms_per_forward"]),
                 f"{num(r['over_floor'])}x"] for r in rows]
        text += [table(["setting", "tokens/s", "forwards", "ms/forward", "over floor"], body), ""]
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decode", action="append", default=[], help="bench_decode JSON (repeatable)")
    ap.add_argument("--loaded", action="append", default=[], help="bench_decode JSON under load (repeatable)")
    ap.add_argument("--peer", action="append", default=[], help="pytorch_llada.py JSON (repeatable)")
    ap.add_argument("--kernels", help="bench_cpu_kernels JSON")
    ap.add_argument("--gpu-json", action="append", default=[], help="GPU bench_decode JSON (optional)")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--reproduce", default="scripts/bench.sh")
    ap.add_argument("--load", help="the machine's load average when the benchmarks started")
    ap.add_argument("--out", default="docs/benchmarks.md")
    args = ap.parse_args()

    decodes = [load(p) for p in args.decode]
    loaded = [load(p) for p in args.loaded]
    peers = [load(p) for p in args.peer]
    kernels = load(args.kernels) if args.kernels else None
    ctx = kernels.get("context", {}) if kernels else {}

    cpu, cores, mem, flags = machine()
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        now = datetime.datetime.fromisoformat(ctx["date"]).astimezone(datetime.timezone.utc)
    except (TypeError, KeyError, ValueError):
        pass
    text = ["# Benchmarks", "",
            "Generated by `tools/bench_report.py` from the JSON files written by `scripts/bench.sh`; "
            "do not edit by hand. Charts: `tools/plot_bench.py`.", "",
            f"- Date: {now.strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Machine: {cpu}, {cores}, {mem}; CPU features: {flags}",
            f"- Commit: `{args.commit}`",
            f"- Build: Release with the default flags (no `-march`): the kernels pick their instruction set at run "
            f"time, here `{ctx.get('unmask_isa', '?')}`",
            f"- Reproduce: `{args.reproduce}`"]
    if args.load:
        text.append(f"- Load average when the run started: {args.load}; the machine is shared, so only ratios "
                    "within one run mean much")
    if peers:
        text.append(f"- Peer: {', '.join(sorted({p['peer'] for p in peers}))}, `tools/peers/pytorch_llada.py`")
    text.append("")
    if any(d.get("smoke") for d in decodes):
        text += ["**Smoke run**: tiny sizes that check the pipeline; the numbers measure nothing.", ""]

    gemm_summary, attention = {}, []
    index = kernel_index(kernels) if kernels else {}
    goals_at = len(text)
    if kernels:
        text += ceilings_section(ctx)
        g, gemm_summary = gemm_sections(index, ctx)
        text += g
        a, attention = attention_section(index)
        text += a + elementwise_section(index) + ["![CPU kernels](bench-kernels.png)", ""]
    if decodes:
        text += ["## Decoding", "",
                 "Batch 1, temperature 0, no early stop at end-of-sequence. Top-k: LLaDA's semi-autoregressive "
                 "low-confidence remasking with steps = gen_length / tokens per step; threshold: Fast-dLLM's. The "
                 "floor of a forward over R canvas rows is its compute floor, 2 x GEMM parameters x R / FMA peak; "
                 "of an autoregressive token its weight-streaming floor, the bytes of weights it reads (not the "
                 "embedding table, which is gathered) / read bandwidth (the L3's when the weights fit in half of "
                 "it). The peer forwards the whole canvas and computes every row's logits; unmask forwards the "
                 "whole canvas and computes the logits (and the last layer's MLP) of the block's rows only. CPU / "
                 "wall near the thread count means nothing else took the cores.", "",
                 "![tokens/s against tokens per step](bench-decode.png)", ""]
        for d in decodes:
            text += decode_section(d, peers)
        text += cache_section(decodes)
    text += loaded_section(loaded)
    text += gpu_section(args.gpu_json)
    text[goals_at:goals_at] = goals_section(gemm_summary, index, attention, decodes, peers, ctx)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(text).rstrip() + "\n")
    print(f"bench_report: wrote {args.out}")


if __name__ == "__main__":
    main()
