#!/usr/bin/env python3
"""Generate tiny LLaDA test checkpoints and reference ("golden") logits.

What it writes (all paths relative to the repository root):

* ``tests/data/tiny_llada_mha/``  -- ``config.json`` + ``model.safetensors``.
  A 2-layer random model in the exact on-disk layout of GSAI-ML/LLaDA-8B
  (LLaDA config keys, ``model.transformer.*`` tensor names, bf16 weights),
  multi-head attention (4 q heads, 4 kv heads), untied output head
  (``model.transformer.ff_out.weight``), single safetensors file.
* ``tests/data/tiny_llada_gqa/``  -- same shapes but grouped-query attention
  (4 q heads, 2 kv heads) and ``weight_tying: true`` (no
  ``model.transformer.ff_out.weight``; the head is the embedding), sharded
  into ``model-0000{1,2}-of-00002.safetensors`` plus
  ``model.safetensors.index.json``.
* ``tests/data/goldens/<case>.safetensors`` -- for each case: ``tokens`` I32
  [B, L], ``lengths`` I32 [B], ``logits`` F32 [B, L, V] (rows at positions >=
  length are zero) and string metadata (model, attention, block_size,
  reference).

The reference logits come from Hugging Face transformers' ``LlamaForCausalLM``
(float32, eager attention) built from a ``LlamaConfig`` with the same shapes,
with the LLaDA tensors (read back from the files just written, bf16 converted
to float32) loaded under a name mapping with ``load_state_dict(strict=True)``.
Full (bidirectional) and block-causal attention are fed to transformers as a
4-D additive float mask [B, 1, L, L] (0 = attend, finfo(float32).min =
masked); causal attention is transformers' default causal path.  Every
sequence uses positions 0..len-1; batched cases are computed one sequence at a
time at its own length (no padding inside the reference) and then placed into
the padded output (pad token id 98).

The script also self-checks the mask convention (an all-zero 4-D mask must
differ from the default causal run, a lower-triangular 4-D mask must reproduce
it) and compares transformers against a small independent float64
re-implementation of the LLaDA forward pass.

Everything is seeded, so re-running reproduces the same files. To regenerate:

    tools/setup_venv.sh && .venv-tools/bin/python tools/make_goldens.py
"""

import json
import math
import os
import struct
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(REPO_ROOT, "tests", "data")
GOLDEN_DIR = os.path.join(DATA_DIR, "goldens")

MASK_ID = 99
EOS_ID = 98
PAD_ID = 98

REFERENCE = f"transformers {transformers.__version__} LlamaForCausalLM float32 eager"

# Shapes shared by both tiny models; per-model differences in MODELS below.
BASE_SHAPES = dict(
    n_layers=2,
    d_model=64,
    n_heads=4,
    mlp_hidden_size=160,
    vocab_size=100,
    embedding_size=100,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    max_sequence_length=64,
)

MODELS = {
    "tiny_llada_mha": dict(n_kv_heads=4, weight_tying=False, sharded=False, seed=20240601, std_embed=0.5),
    # Tied head: the embedding is also the output projection, so it is kept
    # smaller to keep the logits of order 1.
    "tiny_llada_gqa": dict(n_kv_heads=2, weight_tying=True, sharded=True, seed=20240602, std_embed=0.15),
}

# Initialisation scales, chosen so that the logits have a std of order 1.
STD_ATTN = 0.08
STD_MLP_IN = 0.08
STD_MLP_OUT = 0.06
STD_HEAD = 0.125
STD_NORM = 0.1  # norm weights are 1 + STD_NORM * N(0, 1)


# --------------------------------------------------------------------------
# Checkpoint writing (LLaDA layout)
# --------------------------------------------------------------------------

def llada_config(spec):
    """config.json contents, with the keys of the real GSAI-ML/LLaDA-8B config."""
    s = dict(BASE_SHAPES)
    return {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "d_model": s["d_model"],
        "embedding_dropout": 0.0,
        "embedding_size": s["embedding_size"],
        "eos_token_id": EOS_ID,
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": MASK_ID,
        "max_sequence_length": s["max_sequence_length"],
        "mlp_hidden_size": s["mlp_hidden_size"],
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": s["n_heads"],
        "n_kv_heads": spec["n_kv_heads"],
        "n_layers": s["n_layers"],
        "pad_token_id": PAD_ID,
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": s["rms_norm_eps"],
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": s["rope_theta"],
        "scale_logits": False,
        "use_cache": False,
        "vocab_size": s["vocab_size"],
        "weight_tying": spec["weight_tying"],
    }


def make_llada_weights(cfg, seed, std_embed):
    """Random LLaDA-named weights, returned as bf16 tensors (insertion-ordered)."""
    g = torch.Generator().manual_seed(seed)
    d = cfg["d_model"]
    hd = d // cfg["n_heads"]
    nq = cfg["n_heads"] * hd
    nkv = cfg["n_kv_heads"] * hd
    ff = cfg["mlp_hidden_size"]

    def normal(shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    def norm_w():
        return 1.0 + STD_NORM * torch.randn(d, generator=g, dtype=torch.float32)

    w = {}
    w["model.transformer.wte.weight"] = normal((cfg["embedding_size"], d), std_embed)
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        w[p + "attn_norm.weight"] = norm_w()
        w[p + "q_proj.weight"] = normal((nq, d), STD_ATTN)
        w[p + "k_proj.weight"] = normal((nkv, d), STD_ATTN)
        w[p + "v_proj.weight"] = normal((nkv, d), STD_ATTN)
        w[p + "attn_out.weight"] = normal((d, nq), STD_ATTN)
        w[p + "ff_norm.weight"] = norm_w()
        w[p + "ff_proj.weight"] = normal((ff, d), STD_MLP_IN)   # SwiGLU gate
        w[p + "up_proj.weight"] = normal((ff, d), STD_MLP_IN)
        w[p + "ff_out.weight"] = normal((d, ff), STD_MLP_OUT)  # down projection
    w["model.transformer.ln_f.weight"] = norm_w()
    if not cfg["weight_tying"]:
        w["model.transformer.ff_out.weight"] = normal((cfg["vocab_size"], d), STD_HEAD)
    return {k: v.to(torch.bfloat16).contiguous() for k, v in w.items()}


def write_checkpoint(name, spec):
    out_dir = os.path.join(DATA_DIR, name)
    os.makedirs(out_dir, exist_ok=True)
    cfg = llada_config(spec)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")

    weights = make_llada_weights(cfg, spec["seed"], spec["std_embed"])

    # Remove files from a previous run with a different layout.
    for fn in os.listdir(out_dir):
        if fn.endswith(".safetensors") or fn.endswith(".safetensors.index.json"):
            os.remove(os.path.join(out_dir, fn))

    if not spec["sharded"]:
        save_file(weights, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    else:
        shard1 = "model-00001-of-00002.safetensors"
        shard2 = "model-00002-of-00002.safetensors"

        def shard_of(tname):
            if tname == "model.transformer.wte.weight" or tname.startswith("model.transformer.blocks.0."):
                return shard1
            return shard2

        weight_map = {k: shard_of(k) for k in weights}
        for fn in (shard1, shard2):
            part = {k: v for k, v in weights.items() if weight_map[k] == fn}
            save_file(part, os.path.join(out_dir, fn), metadata={"format": "pt"})
        total = sum(v.numel() * v.element_size() for v in weights.values())
        index = {"metadata": {"total_size": total},
                 "weight_map": dict(sorted(weight_map.items()))}
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
    return out_dir


def canonicalize_metadata(path):
    """Rewrite a safetensors header so the ``__metadata__`` keys are sorted.

    safetensors serialises the metadata dict through a hash map, so the key order
    (and therefore the file bytes) changes from run to run.  Reordering the keys
    keeps the header length unchanged, so only the header bytes are rewritten;
    this makes re-runs byte-identical.
    """
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        raw = f.read(n)
        header = json.loads(raw)
        if "__metadata__" not in header:
            return
        meta = header["__metadata__"]
        header["__metadata__"] = {k: meta[k] for k in sorted(meta)}
        # Same compact separators as safetensors; keep its space padding.
        new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        assert len(new) <= n, (len(new), n)
        new = new + b" " * (n - len(new))
        f.seek(8)
        f.write(new)


def read_checkpoint(ckpt_dir):
    """Read config + tensors back from disk (follows the shard index if present)."""
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    index_path = os.path.join(ckpt_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        for fn in sorted(set(index["weight_map"].values())):
            part = load_file(os.path.join(ckpt_dir, fn))
            for k, v in part.items():
                assert index["weight_map"][k] == fn, k
                tensors[k] = v
        assert set(tensors) == set(index["weight_map"])
        assert index["metadata"]["total_size"] == sum(v.numel() * v.element_size() for v in tensors.values())
    else:
        tensors = load_file(os.path.join(ckpt_dir, "model.safetensors"))
    for k, v in tensors.items():
        assert v.dtype == torch.bfloat16, (k, v.dtype)
    return cfg, tensors


# --------------------------------------------------------------------------
# transformers reference
# --------------------------------------------------------------------------

def llada_to_hf_name(name):
    top = {
        "model.transformer.wte.weight": "model.embed_tokens.weight",
        "model.transformer.ln_f.weight": "model.norm.weight",
        "model.transformer.ff_out.weight": "lm_head.weight",
    }
    if name in top:
        return top[name]
    prefix = "model.transformer.blocks."
    assert name.startswith(prefix), name
    idx, rest = name[len(prefix):].split(".", 1)
    block = {
        "attn_norm.weight": "input_layernorm.weight",
        "q_proj.weight": "self_attn.q_proj.weight",
        "k_proj.weight": "self_attn.k_proj.weight",
        "v_proj.weight": "self_attn.v_proj.weight",
        "attn_out.weight": "self_attn.o_proj.weight",
        "ff_norm.weight": "post_attention_layernorm.weight",
        "ff_proj.weight": "mlp.gate_proj.weight",
        "up_proj.weight": "mlp.up_proj.weight",
        "ff_out.weight": "mlp.down_proj.weight",
    }[rest]
    return f"model.layers.{idx}.{block}"


def build_hf_model(cfg, tensors):
    assert cfg["vocab_size"] == cfg["embedding_size"]
    hf_cfg = LlamaConfig(
        vocab_size=cfg["embedding_size"],
        hidden_size=cfg["d_model"],
        intermediate_size=cfg["mlp_hidden_size"],
        num_hidden_layers=cfg["n_layers"],
        num_attention_heads=cfg["n_heads"],
        num_key_value_heads=cfg["n_kv_heads"],
        hidden_act="silu",
        max_position_embeddings=cfg["max_sequence_length"],
        rms_norm_eps=cfg["rms_norm_eps"],
        rope_theta=cfg["rope_theta"],
        rope_scaling=None,
        tie_word_embeddings=cfg["weight_tying"],
        attention_bias=False,
        attention_dropout=0.0,
        pretraining_tp=1,
        use_cache=False,
        pad_token_id=cfg["pad_token_id"],
        eos_token_id=cfg["eos_token_id"],
        bos_token_id=None,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(hf_cfg).to(torch.float32).eval()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation

    sd = {llada_to_hf_name(k): v.to(torch.float32) for k, v in tensors.items()}
    if cfg["weight_tying"]:
        assert "lm_head.weight" not in sd
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict(sd, strict=True)
    if cfg["weight_tying"]:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    # Every parameter must hold exactly the bf16 value from the checkpoint.
    for hf_name, p in model.state_dict().items():
        assert torch.equal(p, sd[hf_name]), hf_name
    return model


def additive_mask(allowed):
    """bool [L, L] (True = may attend) -> float32 additive mask [1, 1, L, L]."""
    m = torch.zeros(allowed.shape, dtype=torch.float32)
    m.masked_fill_(~allowed, torch.finfo(torch.float32).min)
    return m[None, None]


def allowed_matrix(L, attention, block_size):
    i = torch.arange(L)[:, None]
    j = torch.arange(L)[None, :]
    if attention == "full":
        return torch.ones(L, L, dtype=torch.bool)
    if attention == "causal":
        return j <= i
    if attention == "block_causal":
        return (j // block_size) <= (i // block_size)
    raise ValueError(attention)


@torch.no_grad()
def hf_logits(model, tokens, attention, block_size=0, force_4d=False):
    """Logits [L, V] for one unpadded sequence (positions 0..L-1)."""
    L = tokens.shape[0]
    ids = tokens.to(torch.long)[None]
    pos = torch.arange(L, dtype=torch.long)[None]
    if attention == "causal" and not force_4d:
        out = model(input_ids=ids, position_ids=pos, use_cache=False)
    else:
        mask = additive_mask(allowed_matrix(L, attention, block_size))
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
    return out.logits[0].to(torch.float32)


# --------------------------------------------------------------------------
# Independent float64 re-implementation (self-check only)
# --------------------------------------------------------------------------

@torch.no_grad()
def manual_llada_logits(cfg, tensors, tokens, allowed):
    W = {k: v.to(torch.float64) for k, v in tensors.items()}
    d, H, KV = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = d // H
    L = tokens.shape[0]
    eps = cfg["rms_norm_eps"]

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w

    half = hd // 2
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(half, dtype=torch.float64) * 2 / hd))
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None]  # [L, half]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rope(x):  # [L, heads, hd], NeoX (half-split) pairing
        a, b = x[..., :half], x[..., half:]
        c, s = cos[:, None], sin[:, None]
        return torch.cat([a * c - b * s, b * c + a * s], dim=-1)

    x = W["model.transformer.wte.weight"][tokens.long()]
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = rope((h @ W[p + "q_proj.weight"].T).view(L, H, hd))
        k = rope((h @ W[p + "k_proj.weight"].T).view(L, KV, hd))
        v = (h @ W[p + "v_proj.weight"].T).view(L, KV, hd)
        rep = H // KV
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        s = s.masked_fill(~allowed[None], float("-inf"))
        a = torch.einsum("hqk,khd->qhd", torch.softmax(s, -1), v).reshape(L, H * hd)
        x = x + a @ W[p + "attn_out.weight"].T
        h = rms(x, W[p + "ff_norm.weight"])
        gate = h @ W[p + "ff_proj.weight"].T
        up = h @ W[p + "up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ W[p + "ff_out.weight"].T
    x = rms(x, W["model.transformer.ln_f.weight"])
    head = W["model.transformer.wte.weight"] if cfg["weight_tying"] else W["model.transformer.ff_out.weight"]
    return x @ head.T


# --------------------------------------------------------------------------
# Goldens
# --------------------------------------------------------------------------

CASES = [
    # name, model, attention, block_size, lengths, padded L, seed
    ("mha_full", "tiny_llada_mha", "full", 0, [16], 16, 101),
    ("mha_causal", "tiny_llada_mha", "causal", 0, [16], 16, 102),
    ("mha_block_causal", "tiny_llada_mha", "block_causal", 4, [16], 16, 103),
    ("gqa_full", "tiny_llada_gqa", "full", 0, [16], 16, 104),
    ("gqa_causal", "tiny_llada_gqa", "causal", 0, [16], 16, 105),
    ("mha_batched_full", "tiny_llada_mha", "full", 0, [16, 9, 4], 16, 106),
    ("gqa_batched_causal", "tiny_llada_gqa", "causal", 0, [5, 12, 8], 12, 107),
]


def make_tokens(length, gen):
    """Random ids in [0, 98) with ~1/4 of positions (at least one) set to the mask id."""
    t = torch.randint(0, 98, (length,), generator=gen, dtype=torch.int64)
    n_mask = max(1, length // 4)
    pos = torch.randperm(length, generator=gen)[:n_mask]
    t[pos] = MASK_ID
    return t


def check_mask_convention(name, model, cfg, tensors):
    gen = torch.Generator().manual_seed(7)
    toks = make_tokens(16, gen)
    default = hf_logits(model, toks, "causal")
    zero4d = hf_logits(model, toks, "full")
    tril4d = hf_logits(model, toks, "causal", force_4d=True)
    d_zero = (zero4d - default).abs().max().item()
    d_tril = (tril4d - default).abs().max().item()
    assert d_zero > 1e-2, f"{name}: all-zero 4-D mask did not change the result ({d_zero})"
    assert d_tril < 1e-5, f"{name}: lower-triangular 4-D mask != default causal ({d_tril})"
    # Block-causal limits: block_size 1 == causal, block_size L == full.
    b1 = hf_logits(model, toks, "block_causal", 1)
    bL = hf_logits(model, toks, "block_causal", 16)
    d_b1 = (b1 - default).abs().max().item()
    d_bL = (bL - zero4d).abs().max().item()
    assert d_b1 < 1e-5 and d_bL < 1e-5, (d_b1, d_bL)
    print(f"  [{name}] mask check: max|zero4D - default| = {d_zero:.3g} (must differ), "
          f"max|tril4D - default| = {d_tril:.3g}, block1~causal {d_b1:.3g}, block16~full {d_bL:.3g}")
    # Independent float64 implementation, all three attention kinds.
    worst = 0.0
    for attention, bs in (("full", 0), ("causal", 0), ("block_causal", 4)):
        ref = hf_logits(model, toks, attention, bs)
        man = manual_llada_logits(cfg, tensors, toks, allowed_matrix(16, attention, bs)).to(torch.float32)
        worst = max(worst, (ref - man).abs().max().item())
    assert worst < 1e-4, f"{name}: transformers vs float64 re-implementation differ by {worst}"
    print(f"  [{name}] transformers vs independent float64 forward: max abs diff = {worst:.3g}")


def main():
    torch.set_num_threads(1)  # keeps float32 reductions reproducible across machines
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, python {sys.version.split()[0]}")
    os.makedirs(GOLDEN_DIR, exist_ok=True)

    models = {}
    for name, spec in MODELS.items():
        ckpt = write_checkpoint(name, spec)
        cfg, tensors = read_checkpoint(ckpt)
        model = build_hf_model(cfg, tensors)
        models[name] = (cfg, model)
        n_bytes = sum(os.path.getsize(os.path.join(ckpt, f)) for f in os.listdir(ckpt))
        print(f"wrote {os.path.relpath(ckpt, REPO_ROOT)}/ ({len(tensors)} tensors, {n_bytes} bytes on disk)")
        check_mask_convention(name, model, cfg, tensors)

    print(f"reference: {REFERENCE}")
    for case, mname, attention, block_size, lengths, L, seed in CASES:
        cfg, model = models[mname]
        V = cfg["embedding_size"]
        B = len(lengths)
        gen = torch.Generator().manual_seed(seed)
        tokens = torch.full((B, L), PAD_ID, dtype=torch.int32)
        logits = torch.zeros((B, L, V), dtype=torch.float32)
        for b, n in enumerate(lengths):
            t = make_tokens(n, gen)
            tokens[b, :n] = t.to(torch.int32)
            logits[b, :n] = hf_logits(model, t, attention, block_size)
        meta = {
            "model": mname,
            "attention": attention,
            "block_size": str(block_size),
            "reference": REFERENCE,
        }
        path = os.path.join(GOLDEN_DIR, f"{case}.safetensors")
        save_file({"tokens": tokens.contiguous(),
                   "lengths": torch.tensor(lengths, dtype=torch.int32),
                   "logits": logits.contiguous()}, path, metadata=meta)
        canonicalize_metadata(path)
        valid = torch.cat([logits[b, :n] for b, n in enumerate(lengths)])
        print(f"  {case:20s} tokens {list(tokens.shape)} lengths {lengths} logits {list(logits.shape)} "
              f"std {valid.std().item():.4f} max|logit| {valid.abs().max().item():.4f}")

    total = 0
    for root, _, files in os.walk(DATA_DIR):
        for f in files:
            fp = os.path.join(root, f)
            if f.endswith(".safetensors"):
                os.chmod(fp, 0o644)  # save_file creates files as 0600
            total += os.path.getsize(fp)
    print(f"total size of {os.path.relpath(DATA_DIR, REPO_ROOT)}/: {total} bytes")


if __name__ == "__main__":
    main()
