#!/usr/bin/env python3
"""Load benchmark of `unmask serve` on loopback (docs/serving.md).

For each model (the embedded tiny-llada; the 1B preset's shape with random
weights) the program is started twice: batching between denoising steps
(--max-running 64) and one request at a time (--max-running 1, the contrast).
Against each, a closed loop of C clients (C = 1, 4, 16, 64), each one the
official openai client's async API streaming with canvas events, sends
requests back to back until the level's count is done. Every request asks
for the same length, steps and ignore_eos, so each returns the same number
of tokens. Per level:

  throughput        completion tokens / wall time of the level
  tokens/forward    committed tokens / forward passes of the batch (/metrics)
  TTFC p50/p99      send -> first canvas event committing a position
  E2E p50/p99       send -> end of the stream
  GFLOP/s, % peak   the layers' GEMM FLOPs (2 x their weights x canvas rows
                    fed, from /metrics; a lower bound: the head and the
                    attention come on top) / wall, against the fp32 FMA peak
                    measured at the start of this run (bench_cpu_kernels'
                    ceilings, every thread)
  engine busy       share of the wall time the batch was stepping
  server CPU s      user + system time of the server process, beside wall;
  client CPU s      and of this load generator (it shares the machine)

and, for the tiny model, the same requests decoded in process as one batch
by `unmask generate --batch` (no HTTP, no scheduler): the library's own
throughput at that batch size, the peer of the batched server.

    .venv-serve/bin/python bench/serve_load.py --out bench-results/serve.json --plot docs/serving.png
    .venv-serve/bin/python bench/serve_load.py --smoke   # CI: tiny model, levels 1 and 4, a few requests
"""

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import openai
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = ["In the beginning", "And God said", "The earth was", "Let there be light", "And the evening",
           "He called the", "Blessed are the", "In my father's house", "The LORD is my", "And it came to pass"]


def measure_peak(build):
    """The fp32 FMA peak on every thread (GFLOP/s) of the best level, from bench_cpu_kernels' ceilings."""
    tool = os.path.join(build, "bench", "bench_cpu_kernels")
    out = subprocess.run([tool, "--quick", "--benchmark_filter=^$"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True).stdout
    best = 0.0
    for level, one, many in re.findall(r"fp32 FMA peak (\w+)\s+([\d.]+) GFLOP/s \(1 thread\)\s+([\d.]+)", out):
        best = max(best, float(many))
    return best, out


class Server:
    def __init__(self, binary, flags):
        self.proc = subprocess.Popen([binary, "serve", "--port", "0", *flags], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.proc.kill()
            raise RuntimeError(f"unmask serve printed {line!r}")
        self.url = line

    def metrics(self):
        out = {}
        for line in requests.get(self.url + "/metrics", timeout=30).text.splitlines():
            if not line.startswith("#") and "{" not in line:
                name, value = line.split(" ")
                out[name] = float(value)
        return out

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def one_request(client, model, prompt, settings):
    t0 = time.perf_counter()
    first_commit = None
    tokens = 0
    stream = await client.completions.create(
        model=model, prompt=prompt, max_tokens=settings["gen_length"], temperature=0, stream=True,
        stream_options={"include_usage": True},
        extra_body={"steps": settings["steps"], "block_length": settings["block_length"], "ignore_eos": True,
                    "canvas_events": True, "seed": 1})
    async for chunk in stream:
        extra = chunk.model_extra or {}
        if first_commit is None and extra.get("positions"):
            first_commit = time.perf_counter() - t0
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return first_commit, time.perf_counter() - t0, tokens


async def run_level(server, model, prompts, settings, concurrency, count):
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=3600)
    results = []
    next_index = 0

    async def worker():
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            results.append(await one_request(client, model, prompts[i % len(prompts)], settings))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return results


def level_figures(server, model, prompts, settings, concurrency, count, peak):
    before, cpu0, client0, t0 = server.metrics(), server.cpu_seconds(), time.process_time(), time.perf_counter()
    results = asyncio.run(run_level(server, model, prompts, settings, concurrency, count))
    wall = time.perf_counter() - t0
    after, cpu1, client1 = server.metrics(), server.cpu_seconds(), time.process_time()
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    tokens = sum(r[2] for r in results)
    assert tokens == count * settings["gen_length"], (tokens, count)
    flops = 2.0 * after["unmask_model_layer_gemm_parameters"] * d["unmask_canvas_rows_total"]
    return {
        "concurrency": concurrency, "requests": count, "wall_s": wall, "server_cpu_s": cpu1 - cpu0, "client_cpu_s": client1 - client0,
        "tokens": tokens, "tokens_per_s": tokens / wall,
        "forwards": d["unmask_model_calls_total"], "sequence_forwards": d["unmask_sequence_forwards_total"],
        "tokens_per_forward": d["unmask_committed_tokens_total"] / max(1.0, d["unmask_model_calls_total"]),
        "mean_batch": d["unmask_sequence_forwards_total"] / max(1.0, d["unmask_model_calls_total"]),
        "ttfc_p50_s": percentile([r[0] for r in results], 0.5), "ttfc_p99_s": percentile([r[0] for r in results], 0.99),
        "e2e_p50_s": percentile([r[1] for r in results], 0.5), "e2e_p99_s": percentile([r[1] for r in results], 0.99),
        "gflops": flops / wall / 1e9, "peak_share": flops / wall / 1e9 / peak if peak else None,
        "engine_busy_share": d["unmask_step_seconds_sum"] / wall,
    }


def in_process(binary, prompts, settings, count, peak_unused=None):
    """The same requests as one batch of `unmask generate --batch` (tiny model): tokens/s of the decode alone."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for i in range(count):
            f.write(prompts[i % len(prompts)] + "\n")
        path = f.name
    try:
        out = subprocess.run([binary, "generate", "--batch", path, "--gen-length", str(settings["gen_length"]),
                              "--block-length", str(settings["block_length"]), "--steps", str(settings["steps"]),
                              "--no-eos-stop", "--json"], capture_output=True, text=True, check=True).stderr
    finally:
        os.unlink(path)
    # The summary table on stderr: mode, tokens, forwards, tokens/fwd, wall ms, cpu ms, tokens/s.
    row = next(line.split() for line in out.splitlines() if line.startswith("diffusion"))
    tokens, wall = int(row[1]), float(row[4]) / 1e3
    return {"requests": count, "wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--models", default="tiny,1b")
    ap.add_argument("--levels", default="1,4,16,64")
    ap.add_argument("--smoke", action="store_true", help="tiny model, levels 1 and 4, a few requests (CI)")
    ap.add_argument("--out", help="write the figures as JSON")
    ap.add_argument("--plot", help="write the chart (PNG) of throughput against concurrency")
    ap.add_argument("--replot", metavar="JSON", help="only draw --plot from the figures of an earlier --out")
    args = ap.parse_args()
    if args.replot:
        with open(args.replot) as f:
            plot(json.load(f), args.plot)
        return
    binary = os.path.join(args.build, "apps", "unmask")
    levels = [1, 4] if args.smoke else [int(x) for x in args.levels.split(",")]
    models = ["tiny"] if args.smoke else args.models.split(",")
    # The peak is measured before and after the levels, and the larger kept:
    # on a shared machine a neighbour can halve one measurement.
    peak, ceilings_text = (0.0, "") if args.smoke else measure_peak(args.build)
    if not args.smoke:
        print(ceilings_text.strip(), file=sys.stderr)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                       text=True).stdout.strip(),
              "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
              "cpus": os.cpu_count(), "fma_peak_gflops": peak, "models": {}}
    for name in models:
        if name == "tiny":
            flags, model = [], "tiny-llada"
            settings = {"gen_length": 64, "block_length": 32, "steps": 32}
            prompts = PROMPTS
            count = (lambda c: 2 * c if args.smoke else max(16, 2 * c))
        else:
            flags, model = ["--shape", name], "random-" + name
            settings = {"gen_length": 16, "block_length": 16, "steps": 8}
            prompts = [[(97 * i + 13 * k) % 4000 + 10 for k in range(8)] for i in range(len(PROMPTS))]
            count = (lambda c: max(4, c))
        entry = {"settings": settings, "prompt_tokens": 3 if name == "tiny" else 8, "batched": [], "one_at_a_time": []}
        for mode, running in (("batched", "64"), ("one_at_a_time", "1")):
            server = Server(binary, flags + ["--max-running", running, "--max-queued", "1024", "--max-concurrent", "128",
                                             "--request-timeout", "3600"])
            try:
                asyncio.run(run_level(server, model, prompts, settings, 1, 1))  # warm-up
                for c in levels:
                    row = level_figures(server, model, prompts, settings, c, count(c), peak)
                    entry[mode].append(row)
                    print(f"{name:5s} {mode:13s} C={c:3d}: {row['tokens_per_s']:8.1f} tok/s, "
                          f"{row['tokens_per_forward']:5.1f} tok/forward (batch {row['mean_batch']:4.1f}), "
                          f"TTFC p50/p99 {row['ttfc_p50_s'] * 1e3:7.1f}/{row['ttfc_p99_s'] * 1e3:7.1f} ms, "
                          f"E2E p50/p99 {row['e2e_p50_s']:6.2f}/{row['e2e_p99_s']:6.2f} s, "
                          f"{row['gflops']:6.1f} GFLOP/s" +
                          (f" ({100 * row['peak_share']:4.1f}% of peak)" if row["peak_share"] else "") +
                          f", engine busy {100 * row['engine_busy_share']:3.0f}%, "
                          f"CPU {row['server_cpu_s']:.1f} s (client {row['client_cpu_s']:.1f}) in {row['wall_s']:.1f} s", file=sys.stderr)
            finally:
                server.stop()
        if name == "tiny":
            entry["in_process"] = []
            for c in levels:
                row = dict(in_process(binary, prompts, settings, c), concurrency=c)
                entry["in_process"].append(row)
                print(f"{name:5s} in-process    B={c:3d}: {row['tokens_per_s']:8.1f} tok/s (unmask generate --batch)",
                      file=sys.stderr)
        report["models"][name] = entry
    if not args.smoke:
        again, text = measure_peak(args.build)
        print(text.strip(), file=sys.stderr)
        if again > peak:
            for entry in report["models"].values():
                for mode in ("batched", "one_at_a_time"):
                    for row in entry[mode]:
                        row["peak_share"] = row["gflops"] / again
            peak = again
        report["fma_peak_gflops"] = peak
        print(f"fp32 FMA peak (the larger of the two measurements): {peak:.1f} GFLOP/s", file=sys.stderr)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    if args.plot:
        plot(report, args.plot)


def plot(report, path):
    """Throughput (top) and p99 time to the first committed token (bottom) against concurrency, per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(report["models"])
    fig, axes = plt.subplots(2, len(names), figsize=(5.5 * len(names), 7.5), squeeze=False)
    modes = (("batched", "batched between steps (--max-running 64)", "o-"),
             ("one_at_a_time", "one request at a time (--max-running 1)", "s--"),
             ("in_process", "in process, one batch (generate --batch)", "^:"))
    for column, name in enumerate(names):
        e = report["models"][name]
        s = e["settings"]
        top, bottom = axes[0][column], axes[1][column]
        for mode, label, style in modes:
            rows = e.get(mode)
            if not rows:
                continue
            top.plot([r["concurrency"] for r in rows], [r["tokens_per_s"] for r in rows], style, label=label)
            if "ttfc_p99_s" in rows[0]:
                bottom.plot([r["concurrency"] for r in rows], [r["ttfc_p99_s"] for r in rows], style, label=label)
        top.set_ylim(bottom=0)
        top.set_ylabel("completion tokens / s")
        top.set_title(f"{name}: {s['gen_length']} tokens in {s['steps']} steps per request")
        bottom.set_yscale("log")
        bottom.set_ylabel("p99 time to first committed token (s)")
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks([r["concurrency"] for r in e["batched"]])
            ax.set_xticklabels([str(r["concurrency"]) for r in e["batched"]])
            ax.set_xlabel("concurrent requests")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"unmask serve on loopback, {report['cpus']} vCPUs of {report['cpu']} ({report['date']}, {report['commit']})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
