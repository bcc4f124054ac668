#!/usr/bin/env python3
"""Tiny checkpoints of the Qwen-layout families and their reference logits.

What it writes (relative to the repository root):

* ``tests/data/tiny_dream/`` -- Dream (``architectures ["DreamModel"]``,
  ``model_type "Dream"``): transformers' Qwen2 layout and tensor names
  (``model.embed_tokens``, ``model.layers.{i}.self_attn.{q,k,v}_proj.{weight,bias}``,
  ``o_proj.weight``, ``mlp.{gate,up,down}_proj``, ``input_layernorm``,
  ``post_attention_layernorm``, ``model.norm``, ``lm_head``), GQA 4/2, untied
  head, one safetensors file. Bidirectional attention, shifted logits.
* ``tests/data/tiny_fast_dllm_v2/`` -- Fast-dLLM v2
  (``Fast_dLLM_QwenForCausalLM``, ``model_type "Fast_dLLM_Qwen"``, ``bd_size``
  4): Qwen2 layout with a tied head (as Fast_dLLM_v2_1.5B, from
  Qwen2.5-1.5B), two shards and an index. Block-causal attention, shifted logits.
* ``tests/data/tiny_sdar/`` -- SDAR (``SDARForCausalLM``, ``model_type
  "sdar"``, ``block_size`` 4): Qwen3 layout, per-head ``self_attn.q_norm`` /
  ``k_norm``, no biases, ``head_dim`` 32 apart from hidden_size / heads = 16.
  Block-causal attention, no shift.
* ``tests/data/goldens/<case>.safetensors`` -- ``tokens`` I32 [B, L],
  ``lengths`` I32 [B], ``logits`` F32 [B, L, V] (zero rows past each length),
  metadata ``model``, ``attention``, ``block_size``, ``shifted``, ``reference``.

The config.json files carry the keys of the published configs
(Dream-org/Dream-v0-Instruct-7B, Efficient-Large-Model/Fast_dLLM_v2_1.5B,
JetLM/SDAR-1.7B-Chat) with tiny shapes. The reference logits come from
transformers' Qwen2ForCausalLM / Qwen3ForCausalLM in float32 with eager
attention, the bf16 checkpoint values loaded with ``load_state_dict(strict=True)``
(the names are the same), the attention each family uses passed as a 4-D
additive mask, one sequence at a time at its own length; for the shifted
families the logits are then shifted as Dream's generation_utils.py does
(``cat([logits[:, :1], logits[:, :-1]])``). A float64 re-implementation of the
same forward pass checks transformers on every model.

Qwen3 needs transformers >= 4.51, which needs torch >= 2.1 (Debian's torch is
1.13), so this script has its own environment::

    python3 -m venv .venv-families
    .venv-families/bin/pip install -r tools/requirements-families.txt
    .venv-families/bin/python tools/make_family_goldens.py
"""

import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import additive_mask, allowed_matrix, canonicalize_metadata, make_tokens  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(REPO_ROOT, "tests", "data")
GOLDEN_DIR = os.path.join(DATA_DIR, "goldens")

MASK_ID = 99
EOS_ID = 98
BOS_ID = 97
PAD_ID = 98

SHAPES = dict(vocab_size=100, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
              rms_norm_eps=1e-6, rope_theta=1000000.0)

STD_EMBED = 0.5
STD_ATTN = 0.08
STD_BIAS = 0.1
STD_MLP_IN = 0.08
STD_MLP_OUT = 0.06
STD_HEAD = 0.125
STD_NORM = 0.1


def qwen_config_keys():
    """The keys the published Qwen-layout configs share, with the tiny shapes."""
    s = SHAPES
    return {
        "attention_dropout": 0.0,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "hidden_act": "silu",
        "hidden_size": s["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": s["intermediate_size"],
        "mask_token_id": MASK_ID,
        "max_position_embeddings": s["max_position_embeddings"],
        "max_window_layers": s["num_hidden_layers"],
        "num_attention_heads": s["num_attention_heads"],
        "num_hidden_layers": s["num_hidden_layers"],
        "num_key_value_heads": s["num_key_value_heads"],
        "rms_norm_eps": s["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": s["rope_theta"],
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": False,
        "use_sliding_window": False,
        "vocab_size": s["vocab_size"],
    }


def dream_config():  # Dream-org/Dream-v0-Instruct-7B's keys
    return dict(qwen_config_keys(), **{
        "architectures": ["DreamModel"],
        "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
        "model_type": "Dream",
        "pad_token_id": PAD_ID,
        "transformers_version": "4.46.2",
    })


def fast_dllm_v2_config():  # Efficient-Large-Model/Fast_dLLM_v2_1.5B's keys (tied, as Qwen2.5-1.5B)
    return dict(qwen_config_keys(), **{
        "architectures": ["Fast_dLLM_QwenForCausalLM"],
        "auto_map": {"AutoConfig": "configuration.Fast_dLLM_QwenConfig",
                     "AutoModelForCausalLM": "modeling.Fast_dLLM_QwenForCausalLM"},
        "bd_size": 4,
        "model_type": "Fast_dLLM_Qwen",
        "tie_word_embeddings": True,
        "transformers_version": "4.53.1",
        "use_cache": True,
    })


def sdar_config():  # JetLM/SDAR-1.7B-Chat's keys
    return dict(qwen_config_keys(), **{
        "architectures": ["SDARForCausalLM"],
        "attention_bias": False,
        "attn_implementation": "flex_attention",
        "auto_map": {"AutoConfig": "configuration_sdar.SDARConfig", "AutoModel": "modeling_sdar.SDARModel",
                     "AutoModelForCausalLM": "modeling_sdar.SDARForCausalLM"},
        "block_size": 4,
        "debug": False,
        "ep_size": 1,
        "fuse_cross_entropy": True,
        "head_dim": 32,
        "micro_forward": False,
        "model_type": "sdar",
        "skip_checkpoint": False,
        "transformers_version": "4.52.4",
        "use_deepep": False,
    })


# name -> (config, Qwen3 blocks, attention, block size, shifted, sharded, seed)
MODELS = {
    "tiny_dream": (dream_config(), False, "full", 0, True, False, 20261201),
    "tiny_fast_dllm_v2": (fast_dllm_v2_config(), False, "block_causal", 4, True, True, 20261202),
    "tiny_sdar": (sdar_config(), True, "block_causal", 4, False, False, 20261203),
}

# case -> (model, lengths, L, seed)
CASES = {
    "dream_full": ("tiny_dream", [16], 16, 31),
    "dream_batched": ("tiny_dream", [16, 9, 4], 16, 32),
    "fast_dllm_v2_block_causal": ("tiny_fast_dllm_v2", [16], 16, 33),
    "fast_dllm_v2_batched": ("tiny_fast_dllm_v2", [13, 16, 6], 16, 34),
    "sdar_block_causal": ("tiny_sdar", [16], 16, 35),
    "sdar_batched": ("tiny_sdar", [7, 16, 12], 16, 36),
}


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def make_weights(cfg, qwen3, seed):
    """Random weights under the Qwen tensor names, as bf16 (insertion-ordered)."""
    g = torch.Generator().manual_seed(seed)
    d, hd = cfg["hidden_size"], head_dim(cfg)
    nq, nkv, ff = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd, cfg["intermediate_size"]

    def normal(shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    def norm_w(n):
        return 1.0 + STD_NORM * torch.randn(n, generator=g, dtype=torch.float32)

    w = {"model.embed_tokens.weight": normal((cfg["vocab_size"], d), 0.15 if cfg["tie_word_embeddings"] else STD_EMBED)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm_w(d)
        w[p + "self_attn.q_proj.weight"] = normal((nq, d), STD_ATTN)
        w[p + "self_attn.k_proj.weight"] = normal((nkv, d), STD_ATTN)
        w[p + "self_attn.v_proj.weight"] = normal((nkv, d), STD_ATTN)
        if qwen3:
            w[p + "self_attn.q_norm.weight"] = norm_w(hd)
            w[p + "self_attn.k_norm.weight"] = norm_w(hd)
        else:
            w[p + "self_attn.q_proj.bias"] = normal((nq,), STD_BIAS)
            w[p + "self_attn.k_proj.bias"] = normal((nkv,), STD_BIAS)
            w[p + "self_attn.v_proj.bias"] = normal((nkv,), STD_BIAS)
        w[p + "self_attn.o_proj.weight"] = normal((d, nq), STD_ATTN)
        w[p + "post_attention_layernorm.weight"] = norm_w(d)
        w[p + "mlp.gate_proj.weight"] = normal((ff, d), STD_MLP_IN)
        w[p + "mlp.up_proj.weight"] = normal((ff, d), STD_MLP_IN)
        w[p + "mlp.down_proj.weight"] = normal((d, ff), STD_MLP_OUT)
    w["model.norm.weight"] = norm_w(d)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = normal((cfg["vocab_size"], d), STD_HEAD)
    return {k: v.to(torch.bfloat16).contiguous() for k, v in w.items()}


def write_checkpoint(name, cfg, weights, sharded):
    out_dir = os.path.join(DATA_DIR, name)
    os.makedirs(out_dir, exist_ok=True)
    for fn in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, fn))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    if not sharded:
        save_file(weights, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return out_dir
    shards = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    weight_map = {k: shards[0] if k == "model.embed_tokens.weight" or k.startswith("model.layers.0.") else shards[1]
                  for k in weights}
    for fn in shards:
        save_file({k: v for k, v in weights.items() if weight_map[k] == fn}, os.path.join(out_dir, fn),
                  metadata={"format": "pt"})
    index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in weights.values())},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    return out_dir


def read_weights(ckpt_dir):
    index_path = os.path.join(ckpt_dir, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        return load_file(os.path.join(ckpt_dir, "model.safetensors"))
    with open(index_path) as f:
        index = json.load(f)
    tensors = {}
    for fn in sorted(set(index["weight_map"].values())):
        tensors.update(load_file(os.path.join(ckpt_dir, fn)))
    assert set(tensors) == set(index["weight_map"])
    return tensors


def build_hf_model(cfg, qwen3, tensors):
    common = dict(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                  intermediate_size=cfg["intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
                  num_attention_heads=cfg["num_attention_heads"], num_key_value_heads=cfg["num_key_value_heads"],
                  max_position_embeddings=cfg["max_position_embeddings"], rms_norm_eps=cfg["rms_norm_eps"],
                  rope_theta=cfg["rope_theta"], tie_word_embeddings=cfg["tie_word_embeddings"],
                  hidden_act="silu", attention_dropout=0.0, use_sliding_window=False)
    if qwen3:
        hf_cfg = Qwen3Config(head_dim=cfg["head_dim"], attention_bias=False, **common)
        model = Qwen3ForCausalLM(hf_cfg)
    else:
        hf_cfg = Qwen2Config(**common)
        model = Qwen2ForCausalLM(hf_cfg)
    hf_cfg._attn_implementation = "eager"
    state = {k: v.to(torch.float32) for k, v in tensors.items()}
    if cfg["tie_word_embeddings"]:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(torch.float32)


@torch.no_grad()
def hf_logits(model, tokens, attention, block_size, shifted):
    """Logits [L, V] of one unpadded sequence, shifted as Dream's generation code when `shifted`."""
    L = tokens.shape[0]
    mask = additive_mask(allowed_matrix(L, attention, block_size))
    out = model(input_ids=tokens.to(torch.long)[None], attention_mask=mask,
                position_ids=torch.arange(L)[None], use_cache=False).logits[0].to(torch.float32)
    if shifted:
        out = torch.cat([out[:1], out[:-1]], dim=0)
    return out


@torch.no_grad()
def manual_logits(cfg, qwen3, tensors, tokens, allowed, shifted):
    """An independent float64 forward pass of the same model (self-check)."""
    W = {k: v.to(torch.float64) for k, v in tensors.items()}
    d, hd = cfg["hidden_size"], head_dim(cfg)
    H, KV, eps = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["rms_norm_eps"]
    L = tokens.shape[0]

    def rms(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)

    def rope(x):  # (heads, L, hd), half rotation
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    x = W["model.embed_tokens.weight"][tokens.long()]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        n = rms(x, W[p + "input_layernorm.weight"])
        q, k, v = (n @ W[p + f"self_attn.{t}_proj.weight"].T for t in "qkv")
        if not qwen3:
            q, k, v = q + W[p + "self_attn.q_proj.bias"], k + W[p + "self_attn.k_proj.bias"], v + W[p + "self_attn.v_proj.bias"]
        q = q.view(L, H, hd).transpose(0, 1)
        k = k.view(L, KV, hd).transpose(0, 1)
        v = v.view(L, KV, hd).transpose(0, 1)
        if qwen3:
            q, k = rms(q, W[p + "self_attn.q_norm.weight"]), rms(k, W[p + "self_attn.k_norm.weight"])
        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        s = (q @ k.transpose(1, 2)) / (hd ** 0.5)
        s = s.masked_fill(~allowed[None], float("-inf"))
        o = (s.softmax(-1) @ v).transpose(0, 1).reshape(L, H * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        m = rms(x, W[p + "post_attention_layernorm.weight"])
        g, u = m @ W[p + "mlp.gate_proj.weight"].T, m @ W[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ W[p + "mlp.down_proj.weight"].T
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    out = rms(x, W["model.norm.weight"]) @ head.T
    if shifted:
        out = torch.cat([out[:1], out[:-1]], dim=0)
    return out


def main():
    torch.set_num_threads(1)
    reference = f"transformers {transformers.__version__} Qwen2ForCausalLM/Qwen3ForCausalLM float32 eager"
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, python {sys.version.split()[0]}")
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    models = {}
    for name, (cfg, qwen3, attention, block, shifted, sharded, seed) in MODELS.items():
        ckpt = write_checkpoint(name, cfg, make_weights(cfg, qwen3, seed), sharded)
        tensors = read_weights(ckpt)
        model = build_hf_model(cfg, qwen3, tensors)
        models[name] = (cfg, qwen3, attention, block, shifted, model)
        gen = torch.Generator().manual_seed(7)
        toks = make_tokens(16, gen)
        worst = 0.0
        for att, bs in (("full", 0), ("causal", 0), ("block_causal", 4)):
            ref = hf_logits(model, toks, att, bs, shifted)
            man = manual_logits(cfg, qwen3, tensors, toks, allowed_matrix(16, att, bs), shifted).to(torch.float32)
            worst = max(worst, (ref - man).abs().max().item())
        assert worst < 1e-4, f"{name}: transformers vs float64 re-implementation differ by {worst}"
        full = hf_logits(model, toks, "full", 0, False)
        causal = hf_logits(model, toks, "causal", 0, False)
        assert (full - causal).abs().max().item() > 1e-2, f"{name}: the 4-D mask had no effect"
        print(f"wrote {os.path.relpath(ckpt, REPO_ROOT)}/ ({len(tensors)} tensors); "
              f"transformers vs float64 forward: max abs diff {worst:.3g}")

    for case, (mname, lengths, L, seed) in CASES.items():
        cfg, qwen3, attention, block, shifted, model = models[mname]
        V, B = cfg["vocab_size"], len(lengths)
        gen = torch.Generator().manual_seed(seed)
        tokens = torch.full((B, L), PAD_ID, dtype=torch.int32)
        logits = torch.zeros((B, L, V), dtype=torch.float32)
        for b, n in enumerate(lengths):
            t = make_tokens(n, gen)
            tokens[b, :n] = t.to(torch.int32)
            logits[b, :n] = hf_logits(model, t, attention, block, shifted)
        meta = {"model": mname, "attention": attention, "block_size": str(block),
                "shifted": "1" if shifted else "0", "reference": reference}
        path = os.path.join(GOLDEN_DIR, f"{case}.safetensors")
        save_file({"tokens": tokens.contiguous(), "lengths": torch.tensor(lengths, dtype=torch.int32),
                   "logits": logits.contiguous()}, path, metadata=meta)
        canonicalize_metadata(path)
        valid = torch.cat([logits[b, :n] for b, n in enumerate(lengths)])
        print(f"  {case:28s} tokens {list(tokens.shape)} lengths {lengths} std {valid.std().item():.4f} "
              f"max|logit| {valid.abs().max().item():.4f}")
    for name in MODELS:
        for f in os.listdir(os.path.join(DATA_DIR, name)):
            os.chmod(os.path.join(DATA_DIR, name, f), 0o644)
    for case in CASES:
        os.chmod(os.path.join(GOLDEN_DIR, f"{case}.safetensors"), 0o644)


if __name__ == "__main__":
    main()
