#!/usr/bin/env python3
"""PyTorch peer for bench/bench_decode: the decoders as the reference repositories run them.

What it measures
----------------
Tokens per second of plain eager PyTorch on the same checkpoint, prompt and
settings as ``bench_decode``, decoded the way the published code does it:

* LLaDA ``generate`` (GSAI-ML/LLaDA ``generate.py``): semi-autoregressive
  blocks, a forward pass over the whole canvas at every step (no cache),
  ``low_confidence`` remasking, ``get_num_transfer_tokens`` splitting each
  block's masks over its steps, top-k commits; steps = gen_length / k for
  k = 1, 2, 4, 8 tokens per step; temperature 0.
* Fast-dLLM threshold decoding (NVlabs/Fast-dLLM ``llada/generate.py``,
  ``generate`` without cache and ``get_transfer_index`` with ``threshold``
  0.9): per block, forward the whole canvas until the block has no mask left,
  committing the most confident masked position and every other one whose
  confidence is >= 0.9.
* Greedy autoregressive decoding of the AR twin with a per-layer K/V cache,
  as Hugging Face ``generate`` does it: one causal prefill forward over the
  prompt gives the first token, then one single-token forward per token,
  appending its K/V to the cache (``torch.cat``, like ``DynamicCache``).

All three are written here from the published algorithms (no code copied).
The model is a plain eager ``torch.nn.Module`` implementing the LLaDA "llama"
block (RMSNorm in float32, rotate_half RoPE, grouped-query attention by
``repeat_interleave``, SwiGLU MLP, no biases), loaded from the LLaDA-layout
safetensors.  The bf16 weights are converted to float32 and everything runs in
float32 on the CPU: unmask also computes in float32 (it streams the bf16
weights), so this is an fp32-vs-fp32 comparison of the decode machinery, not
of the weight format.  ``torch.set_num_threads(os.cpu_count())`` and
``torch.inference_mode()``; every setting is timed (wall clock) once, after
one untimed warm-up of the cheapest setting (top-k with the most tokens per
step, and a short AR decode).

Before timing, the forward pass is checked against Hugging Face
transformers' ``LlamaForCausalLM`` (float32, eager) built as in
``tools/make_goldens.py``: full attention through a 4-D all-zero additive
mask and causal attention, max |logit difference| <= 1e-4, and the K/V-cached
AR decode against a full causal forward (<= 1e-3).

Output: JSON with the same row schema as ``bench_decode --json`` (cache is
always "none") plus ``"peer": "pytorch <version> eager float32"``.

    .venv-tools/bin/python tools/peers/pytorch_llada.py --model models/tiny-llada \\
        --ar-model models/tiny-ar --gen-length 256 --block-length 32 --json peer.json

``--compare-with FILE`` (a ``bench_decode --json`` file) compares tokens and
forwards per matching row, and the canvases when the file carries them
(bench_decode does not write canvases today).  ``--compare-cli BIN`` runs
unmask's command-line program (``unmask generate --json --no-eos-stop``) on
the same settings and compares the generated text with the peer's, decoded up
to the first end-of-sequence token (the program prints text, not tokens).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_PROMPT = "And God said, Let there be light: and there was light. And God saw the light,"
TOOLS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERIFY_TOLERANCE = 1e-4     # max |logit difference| against transformers, same shapes
KV_CACHE_TOLERANCE = 1e-3   # cached decode vs one full forward: other reduction shapes, so looser


# --------------------------------------------------------------------------
# Checkpoint
# --------------------------------------------------------------------------

def load_checkpoint(model_dir):
    """config.json and the tensors (single file or sharded through the index)."""
    from safetensors.torch import load_file

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for fn in files:
            tensors.update(load_file(os.path.join(model_dir, fn)))
    else:
        tensors = load_file(os.path.join(model_dir, "model.safetensors"))
    return cfg, tensors


# --------------------------------------------------------------------------
# Model: the LLaDA "llama" block, eager PyTorch
# --------------------------------------------------------------------------

class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * w, computed in float32 (LLaDA's RMSLayerNorm)."""

    def __init__(self, weight, eps):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.eps = eps

    def forward(self, x):
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return x32 * self.weight


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) over the two halves of the head dimension (NeoX / LLaDA pairing)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Rope:
    """cos / sin tables: angle(p, i) = p * theta^(-2i / head_dim), halves repeated."""

    def __init__(self, head_dim, theta):
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.cos = self.sin = None
        self._grow(512)

    def _grow(self, n):
        freqs = torch.outer(torch.arange(n, dtype=torch.float32), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def tables(self, start, length):
        if start + length > self.cos.shape[0]:
            self._grow(2 * (start + length))
        return self.cos[start:start + length], self.sin[start:start + length]

    @staticmethod
    def apply(x, cos, sin):  # x (B, heads, L, hd), cos/sin (L, hd)
        return x * cos + rotate_half(x) * sin


def linear(weight):
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    layer.weight = nn.Parameter(weight, requires_grad=False)
    return layer


class Block(nn.Module):
    def __init__(self, cfg, w, prefix):
        super().__init__()
        eps = cfg["rms_norm_eps"]
        self.heads, self.kv_heads = cfg["n_heads"], cfg["n_kv_heads"] or cfg["n_heads"]
        self.head_dim = cfg["d_model"] // cfg["n_heads"]
        self.attn_norm = RMSNorm(w[prefix + "attn_norm.weight"], eps)
        self.q_proj = linear(w[prefix + "q_proj.weight"])
        self.k_proj = linear(w[prefix + "k_proj.weight"])
        self.v_proj = linear(w[prefix + "v_proj.weight"])
        self.attn_out = linear(w[prefix + "attn_out.weight"])
        self.ff_norm = RMSNorm(w[prefix + "ff_norm.weight"], eps)
        self.ff_proj = linear(w[prefix + "ff_proj.weight"])  # SwiGLU gate
        self.up_proj = linear(w[prefix + "up_proj.weight"])
        self.ff_out = linear(w[prefix + "ff_out.weight"])    # down projection

    def forward(self, x, cos, sin, mask, cache):
        B, L, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, L, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(B, L, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(B, L, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = Rope.apply(q, cos, sin), Rope.apply(k, cos, sin)
        if cache is not None:  # append this call's K/V, attend over everything cached
            if cache[0] is not None:
                k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
            cache[0], cache[1] = k, v
        if self.kv_heads != self.heads:
            group = self.heads // self.kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        attn = torch.matmul(F.softmax(scores, dim=-1), v)
        x = x + self.attn_out(attn.transpose(1, 2).reshape(B, L, self.heads * self.head_dim))
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


class LLaDA(nn.Module):
    """ids (B, L) -> logits (B, L, vocab), float32.  causal=False: full bidirectional
    attention (masked diffusion); causal=True with a cache: AR prefill / decode."""

    def __init__(self, cfg, tensors):
        super().__init__()
        w = {k: v.to(torch.float32) for k, v in tensors.items()}
        self.cfg = cfg
        self.wte = nn.Parameter(w["model.transformer.wte.weight"], requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(cfg, w, f"model.transformer.blocks.{i}.") for i in range(cfg["n_layers"]))
        self.ln_f = RMSNorm(w["model.transformer.ln_f.weight"], cfg["rms_norm_eps"])
        head = w["model.transformer.wte.weight"] if cfg.get("weight_tying") else w["model.transformer.ff_out.weight"]
        self.head = linear(head)
        self.rope = Rope(cfg["d_model"] // cfg["n_heads"], cfg["rope_theta"])
        self.vocab = cfg["vocab_size"]
        self.eval()

    def new_cache(self):
        return [[None, None] for _ in self.blocks]

    def forward(self, ids, causal=False, cache=None, start=0):
        B, L = ids.shape
        x = F.embedding(ids, self.wte)
        cos, sin = self.rope.tables(start, L)
        mask = None
        if causal and L > 1:  # query i (at start + i) sees keys 0 .. start + i
            keys = start + L
            allowed = torch.arange(keys)[None, :] <= (start + torch.arange(L))[:, None]
            mask = torch.zeros(L, keys).masked_fill_(~allowed, torch.finfo(torch.float32).min)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache[i] if cache is not None else None)
        return self.head(self.ln_f(x))[..., : self.vocab]


# --------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------

def num_transfer_tokens(masks_in_block, steps):
    """LLaDA get_num_transfer_tokens: masks // steps per step, the first masks % steps get one more."""
    base, rest = divmod(masks_in_block, steps)
    return [base + (1 if i < rest else 0) for i in range(steps)]


def confidence_of_argmax(logits):
    """argmax token and its softmax probability (float64 softmax, as both reference repos do)."""
    x0 = torch.argmax(logits, dim=-1)
    p = F.softmax(logits.to(torch.float64), dim=-1)
    return x0, torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)


def llada_generate(model, prompt, steps, gen_length, block_length, mask_id):
    """GSAI-ML/LLaDA generate.py at temperature 0, low_confidence remasking, batch 1."""
    P = len(prompt)
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[0, :P] = torch.tensor(prompt, dtype=torch.long)
    num_blocks = gen_length // block_length
    assert gen_length % block_length == 0 and steps % num_blocks == 0, (gen_length, block_length, steps)
    steps_per_block = steps // num_blocks
    forwards = 0
    for b in range(num_blocks):
        end = P + (b + 1) * block_length
        counts = num_transfer_tokens(int((x[0, end - block_length:end] == mask_id).sum()), steps_per_block)
        for i in range(steps_per_block):
            mask_index = x == mask_id
            logits = model(x)
            forwards += 1
            x0, x0_p = confidence_of_argmax(logits)
            x0_p[:, end:] = -math.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.full_like(x0_p, -math.inf))
            _, idx = torch.topk(confidence[0], k=counts[i])
            x[0, idx] = x0[0, idx]
    return x[0].tolist(), forwards


def fast_dllm_threshold_generate(model, prompt, gen_length, block_length, threshold, mask_id):
    """NVlabs/Fast-dLLM llada/generate.py ``generate`` (no cache) with ``threshold``, batch 1."""
    P = len(prompt)
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[0, :P] = torch.tensor(prompt, dtype=torch.long)
    assert gen_length % block_length == 0
    forwards = 0
    for b in range(gen_length // block_length):
        start, end = P + b * block_length, P + (b + 1) * block_length
        while True:
            mask_index = x == mask_id
            logits = model(x)
            forwards += 1
            mask_index[:, end:] = False
            x0, x0_p = confidence_of_argmax(logits)
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.full_like(x0_p, -math.inf))
            n = int(mask_index[0].sum())
            values, idx = torch.topk(confidence[0], k=n)
            keep = values >= threshold
            keep[0] = True  # the most confident position is always committed
            chosen = idx[keep]
            x[0, chosen] = x0[0, chosen]
            if int((x[0, start:end] == mask_id).sum()) == 0:
                break
    return x[0].tolist(), forwards


def ar_generate(model, prompt, max_new_tokens):
    """Greedy decoding with a K/V cache: prefill the prompt, then one token per forward."""
    cache = model.new_cache()
    ids = torch.tensor([prompt], dtype=torch.long)
    logits = model(ids, causal=True, cache=cache, start=0)
    forwards = 1
    out = list(prompt)
    token = int(torch.argmax(logits[0, -1]))
    out.append(token)
    while len(out) - len(prompt) < max_new_tokens:
        logits = model(torch.tensor([[token]], dtype=torch.long), causal=True, cache=cache, start=len(out) - 1)
        forwards += 1
        token = int(torch.argmax(logits[0, -1]))
        out.append(token)
    return out, forwards


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def verify_against_transformers(model_dir, model, cfg, tensors):
    """Max |logit difference| against transformers' LlamaForCausalLM, full (4-D zero mask) and causal."""
    sys.path.insert(0, TOOLS_DIR)
    sys.dont_write_bytecode = True
    import make_goldens as mg  # builds LlamaForCausalLM from LLaDA tensors (float32, eager)

    hf = mg.build_hf_model(cfg, {k: v for k, v in tensors.items()})
    L = min(48, cfg["max_sequence_length"])
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg["vocab_size"], (L,), generator=g)
    result = {}
    ref_full = mg.hf_logits(hf, ids, "full")
    result["full"] = (model(ids[None])[0] - ref_full).abs().max().item()
    ref_causal = mg.hf_logits(hf, ids, "causal")
    result["causal"] = (model(ids[None], causal=True)[0] - ref_causal).abs().max().item()
    # K/V-cached decode: prefill 8 tokens, then one at a time.
    cache = model.new_cache()
    rows = [model(ids[None, :8], causal=True, cache=cache, start=0)[0]]
    for p in range(8, L):
        rows.append(model(ids[None, p:p + 1], causal=True, cache=cache, start=p)[0])
    result["kv_cache"] = (torch.cat(rows) - ref_causal).abs().max().item()
    ok = result["full"] <= VERIFY_TOLERANCE and result["causal"] <= VERIFY_TOLERANCE \
        and result["kv_cache"] <= KV_CACHE_TOLERANCE
    print(f"verify {os.path.basename(model_dir)} against transformers LlamaForCausalLM: "
          + ", ".join(f"{k} {v:.2e}" for k, v in result.items()) + (" OK" if ok else " FAILED"), file=sys.stderr)
    if not ok:
        raise SystemExit(f"pytorch_llada: forward differs from transformers by more than {VERIFY_TOLERANCE} "
                         f"({KV_CACHE_TOLERANCE} with the K/V cache)")
    return result


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------

def encode_prompt(model_dir, text, prompt_length=16):
    """The model's tokenizer.json encoding of the prompt, or prompt_length ones without one
    (what bench_decode does)."""
    path = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(path):
        from tokenizers import Tokenizer
        ids = Tokenizer.from_file(path).encode(text, add_special_tokens=False).ids
        if ids:
            return ids
    return [1] * prompt_length


def decode_text(model_dir, ids, eos):
    """Text of the generated ids up to the first end-of-sequence token (as unmask prints it)."""
    from tokenizers import Tokenizer
    cut = ids.index(eos) if eos in ids else len(ids)
    return Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")).decode(ids[:cut], skip_special_tokens=True)


def make_row(name, mode, policy, tokens_per_step, threshold, gen_length, block_length, steps, tokens, forwards, wall_s):
    return {
        "model": name, "mode": mode, "policy": policy, "cache": "none",
        "tokens_per_step": tokens_per_step, "threshold": threshold,
        "gen_length": gen_length, "block_length": block_length, "steps": steps,
        "tokens": tokens, "forwards": forwards, "tokens_per_forward": tokens / forwards,
        "wall_s": wall_s, "tokens_per_second": tokens / wall_s, "ms_per_forward": wall_s * 1e3 / forwards,
        "agreement": None,
    }


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def compare_with_bench(rows, outputs, path):
    """Tokens / forwards (and canvases, when present) against a bench_decode JSON."""
    with open(path) as f:
        theirs = json.load(f)
    key = lambda r: (r["model"], r["mode"], r["policy"], r["tokens_per_step"], r["cache"])  # noqa: E731
    index = {key(r): r for r in theirs["rows"]}
    found = False
    for r in rows:
        o = index.get(key(r))
        if o is None:
            continue
        found = True
        same = o["tokens"] == r["tokens"] and o["forwards"] == r["forwards"]
        line = f"compare-with {r['model']} {r['mode']} {r['policy']} k={r['tokens_per_step']}: " \
               f"tokens {r['tokens']}/{o['tokens']}, forwards {r['forwards']}/{o['forwards']} " \
               f"{'same' if same else 'DIFFERENT'}"
        canvas = o.get("canvas") or (o.get("outputs") or [None])[0]
        if canvas is not None:
            mine = outputs[id(r)]
            agree = sum(a == b for a, b in zip(mine, canvas)) / max(len(mine), 1)
            line += f", canvas {'equal' if mine == canvas else f'{100 * agree:.1f}% equal'}"
        else:
            line += " (no canvas in the file: token-level comparison not possible)"
        print(line, file=sys.stderr)
    if not found:
        print(f"compare-with: no matching rows in {path}", file=sys.stderr)


def compare_with_cli(binary, row, canvas, prompt_len, args, model_dir, ar_dir, eos):
    """Run unmask generate on the row's settings; compare its text with the peer's."""
    cmd = [binary, "generate", "-p", args.prompt, "--gen-length", str(row["gen_length"]), "--json", "--no-eos-stop"]
    if row["mode"] == "autoregressive":
        cmd += ["--ar", "--model", ar_dir]  # with --ar (and no --compare) the program decodes --model
        text_dir = ar_dir
    else:
        cmd += ["--model", model_dir, "--block-length", str(row["block_length"])]
        cmd += ["--policy", "threshold", "--threshold", str(row["threshold"])] if row["policy"] == "threshold" \
            else ["--policy", "low-confidence", "--steps", str(row["steps"])]
        text_dir = model_dir
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
        theirs = json.loads(out.stdout)["runs"][-1]["text"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError) as e:
        print(f"compare-cli: {' '.join(cmd)} failed: {e}", file=sys.stderr)
        return None
    mine = decode_text(text_dir, canvas[prompt_len:], eos)
    same = mine == theirs
    print(f"compare-cli {row['model']} {row['mode']} {row['policy']} k={row['tokens_per_step']}: "
          f"text {'equal' if same else 'DIFFERENT'}" + ("" if same else f"\n  peer:   {mine!r}\n  unmask: {theirs!r}"),
          file=sys.stderr)
    return same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="masked diffusion model directory (LLaDA layout)")
    ap.add_argument("--ar-model", help="autoregressive twin (default: --model)")
    ap.add_argument("--gen-length", type=int, default=256)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one top-k setting: checks that it runs")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--no-verify", action="store_true", help="skip the check against transformers")
    ap.add_argument("--compare-with", help="bench_decode JSON to compare tokens / forwards / canvases with")
    ap.add_argument("--compare-cli", help="unmask program: compare generated text per row")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model_dir = args.model.rstrip("/")
    ar_dir = (args.ar_model or args.model).rstrip("/")
    gen_length, block_length = args.gen_length, args.block_length
    if args.smoke:
        gen_length, block_length = min(gen_length, 32), min(block_length, 16)
    block_length = min(block_length, gen_length)
    per_step = [4] if args.smoke else [1, 2, 4, 8]
    threshold = 0.9

    cfg, tensors = load_checkpoint(model_dir)
    ar_cfg, ar_tensors = load_checkpoint(ar_dir) if ar_dir != model_dir else (cfg, tensors)
    prompt = encode_prompt(model_dir, args.prompt)
    name, ar_name = os.path.basename(model_dir), os.path.basename(ar_dir)
    mask_id = cfg["mask_token_id"]

    with torch.inference_mode():
        model = LLaDA(cfg, tensors)
        ar_model = LLaDA(ar_cfg, ar_tensors) if ar_dir != model_dir else model
        verify = {}
        if not args.no_verify:
            verify[name] = verify_against_transformers(model_dir, model, cfg, tensors)
            if ar_dir != model_dir:
                verify[ar_name] = verify_against_transformers(ar_dir, ar_model, ar_cfg, ar_tensors)

        # Warm-up: the cheapest setting, untimed.
        k_max = max(per_step)
        llada_generate(model, prompt, gen_length // k_max, gen_length, block_length, mask_id)
        ar_generate(ar_model, prompt, min(gen_length, 8))

        rows, outputs = [], {}

        def add(row, canvas):
            rows.append(row)
            outputs[id(row)] = canvas
            print(f"  {row['model']} {row['mode']} {row['policy']} k={row['tokens_per_step']}: "
                  f"{row['forwards']} forwards, {row['tokens_per_second']:.1f} tokens/s", file=sys.stderr)

        for k in per_step:
            steps = gen_length // k
            (canvas, forwards), wall = timed(lambda: llada_generate(model, prompt, steps, gen_length, block_length, mask_id))
            add(make_row(name, "diffusion", "top_k", k, None, gen_length, block_length, steps, gen_length, forwards, wall),
                canvas)
        (canvas, forwards), wall = timed(
            lambda: fast_dllm_threshold_generate(model, prompt, gen_length, block_length, threshold, mask_id))
        # bench_decode writes steps 0 for threshold rows (the count is not fixed in advance).
        add(make_row(name, "diffusion", "threshold", None, threshold, gen_length, block_length, 0, gen_length, forwards,
                     wall), canvas)
        (canvas, forwards), wall = timed(lambda: ar_generate(ar_model, prompt, gen_length))
        add(make_row(ar_name, "autoregressive", "greedy", 1, None, gen_length, 0, gen_length, gen_length, forwards, wall),
            canvas)

    if args.compare_with:
        compare_with_bench(rows, outputs, args.compare_with)
    if args.compare_cli:
        if os.path.exists(os.path.join(model_dir, "tokenizer.json")):
            for r in rows:
                r["unmask_text_equal"] = compare_with_cli(args.compare_cli, r, outputs[id(r)], len(prompt), args,
                                                          model_dir, ar_dir, cfg["eos_token_id"])
        else:
            print("compare-cli: the model has no tokenizer.json, skipped", file=sys.stderr)

    result = {
        "peer": f"pytorch {torch.__version__} eager float32",
        "threads": torch.get_num_threads(),
        "prompt_tokens": len(prompt),
        "smoke": args.smoke,
        "verify_max_abs_logit_diff": verify,
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    print(f"{'model':<14} {'mode':<15} {'policy':<10} {'k':>3} {'forwards':>9} {'tok/fwd':>8} {'tokens/s':>10} {'ms/fwd':>9}")
    for r in rows:
        print(f"{r['model']:<14} {r['mode']:<15} {r['policy']:<10} {str(r['tokens_per_step'] or '-'):>3} "
              f"{r['forwards']:>9} {r['tokens_per_forward']:>8.2f} {r['tokens_per_second']:>10.1f} {r['ms_per_forward']:>9.3f}")


if __name__ == "__main__":
    main()
