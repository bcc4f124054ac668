#!/usr/bin/env python3
"""Write a random-weight LLaDA-layout checkpoint of a real shape to disk.

For measuring what a memory-mapped checkpoint costs the CPU engine (resident
weights, peak RSS: ``unmask info --model DIR``) at sizes the embedded models
do not reach. The weights are bf16 draws of N(0, 0.02) (norms 1), written as
one ``model.safetensors`` (the format's 8-byte header length, JSON header,
raw little-endian data) next to a ``config.json`` with LLaDA's keys. Only
numpy is needed; nothing here is a golden.

    .venv-tools/bin/python tools/make_random_checkpoint.py --shape 1b --out /tmp/random-1b
"""

import argparse
import json
import os

import numpy as np

SHAPES = {
    # d_model, heads, kv heads, layers, mlp hidden, vocab
    "1b": (2048, 16, 16, 16, 5632, 126464),
    "8b": (4096, 32, 32, 32, 12288, 126464),
}


def bf16_bits(values):
    """float32 -> bf16 bit patterns, round to nearest even."""
    u = values.astype(np.float32).view(np.uint32)
    rounding = 0x7FFF + ((u >> 16) & 1)
    return ((u + rounding) >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1b")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    d, heads, kv_heads, layers, hidden, vocab = SHAPES[args.shape]
    hd = d // heads
    tensors = [("model.transformer.wte.weight", (vocab, d), False), ("model.transformer.ln_f.weight", (d,), True),
               ("model.transformer.ff_out.weight", (vocab, d), False)]
    for i in range(layers):
        b = f"model.transformer.blocks.{i}."
        tensors += [(b + "attn_norm.weight", (d,), True), (b + "q_proj.weight", (heads * hd, d), False),
                    (b + "k_proj.weight", (kv_heads * hd, d), False), (b + "v_proj.weight", (kv_heads * hd, d), False),
                    (b + "attn_out.weight", (d, heads * hd), False), (b + "ff_norm.weight", (d,), True),
                    (b + "ff_proj.weight", (hidden, d), False), (b + "up_proj.weight", (hidden, d), False),
                    (b + "ff_out.weight", (d, hidden), False)]
    header, offset = {}, 0
    for name, shape, _ in tensors:
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    with open(os.path.join(args.out, "model.safetensors"), "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for name, shape, norm in tensors:
            if norm:
                f.write(bf16_bits(np.ones(shape, np.float32)).tobytes())
                continue
            rows = shape[0]
            for r0 in range(0, rows, 4096):  # in slices, so memory stays small
                part = rng.standard_normal((min(4096, rows - r0),) + tuple(shape[1:]), dtype=np.float32) * 0.02
                f.write(bf16_bits(part).tobytes())
    config = {"architectures": ["LLaDAModelLM"], "model_type": "llada", "d_model": d, "n_heads": heads,
              "n_kv_heads": kv_heads, "n_layers": layers, "mlp_hidden_size": hidden, "vocab_size": vocab,
              "embedding_size": vocab, "max_sequence_length": 4096, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
              "mask_token_id": 126336, "eos_token_id": 126081, "pad_token_id": 126081, "weight_tying": False,
              "include_bias": False, "include_qkv_bias": False, "block_type": "llama", "activation_type": "silu",
              "layer_norm_type": "rms", "rope": True, "alibi": False, "scale_logits": False,
              "input_emb_norm": False, "attention_layer_norm": False, "multi_query_attention": None,
              "rope_full_precision": True, "layer_norm_with_affine": True}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"make_random_checkpoint: {args.out} ({offset / 2**30:.2f} GiB of weights)")


if __name__ == "__main__":
    main()
