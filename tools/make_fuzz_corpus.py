#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/ (Python standard library only).

Seeds are small valid inputs of each kind, so libFuzzer mutates from the
shapes real files have instead of discovering JSON and safetensors from
nothing: miniature model directories of every family (the tiny test
checkpoints' config.json with their dimensions shrunk, random bf16/f32
weights, single-file and sharded), safetensors files of every dtype,
config.json files, small tokenizers with the three layouts' normalizer,
pre-tokenizer, post-processor and decoder sections copied from the committed
test tokenizers, texts in many scripts, the committed chat templates and
tokenizer_config variants.

    python3 tools/make_fuzz_corpus.py            # rewrites fuzz/corpus/
"""
import hashlib
import json
import os
import random
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
MARK = b"\n--8<--\n"  # fuzz/fuzz_support.hpp split_parts()
DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "U8": 1, "BOOL": 1, "F64": 8}


def safetensors(tensors, metadata=None, rng=None):
    """tensors: list of (name, dtype, shape); returns the file's bytes."""
    rng = rng or random.Random(0)
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        if dtype == "BF16":
            blob = b"".join(struct.pack("<f", rng.uniform(-0.1, 0.1))[2:] for _ in range(n))
        elif dtype == "F32":
            blob = b"".join(struct.pack("<f", rng.uniform(-0.1, 0.1)) for _ in range(n))
        elif dtype == "F16":
            blob = b"".join(struct.pack("<e", rng.uniform(-0.1, 0.1)) for _ in range(n))
        else:
            blob = bytes(rng.randrange(256) for _ in range(n * DTYPE_SIZE[dtype]))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def llada_names(layer):
    b = f"model.transformer.blocks.{layer}."
    return {"attn_norm": b + "attn_norm.weight", "q": b + "q_proj.weight", "k": b + "k_proj.weight",
            "v": b + "v_proj.weight", "o": b + "attn_out.weight", "mlp_norm": b + "ff_norm.weight",
            "gate": b + "ff_proj.weight", "up": b + "up_proj.weight", "down": b + "ff_out.weight"}


def qwen_names(layer):
    b = f"model.layers.{layer}."
    return {"attn_norm": b + "input_layernorm.weight", "q": b + "self_attn.q_proj.weight",
            "k": b + "self_attn.k_proj.weight", "v": b + "self_attn.v_proj.weight",
            "q_bias": b + "self_attn.q_proj.bias", "k_bias": b + "self_attn.k_proj.bias",
            "v_bias": b + "self_attn.v_proj.bias", "q_norm": b + "self_attn.q_norm.weight",
            "k_norm": b + "self_attn.k_norm.weight", "o": b + "self_attn.o_proj.weight",
            "mlp_norm": b + "post_attention_layernorm.weight", "gate": b + "mlp.gate_proj.weight",
            "up": b + "mlp.up_proj.weight", "down": b + "mlp.down_proj.weight"}


def mini_model(family_dir, dtype):
    """A one-layer model of family_dir's layout: (config bytes, tensor list)."""
    config = json.load(open(os.path.join(ROOT, "tests", "data", family_dir, "config.json")))
    llada = "d_model" in config
    d, heads, kv, hd, hidden, vocab = 8, 2, 1, 4, 8, 100
    if llada:
        config.update(d_model=d, n_heads=heads, n_kv_heads=kv, n_layers=1, mlp_hidden_size=hidden,
                      max_sequence_length=16, embedding_size=vocab, vocab_size=vocab)
        tied = config.get("weight_tying", False)
        names = llada_names(0)
        glob = {"wte": "model.transformer.wte.weight", "ln_f": "model.transformer.ln_f.weight",
                "head": "model.transformer.ff_out.weight"}
    else:
        config.update(hidden_size=d, num_attention_heads=heads, num_key_value_heads=kv, num_hidden_layers=1,
                      intermediate_size=hidden, max_position_embeddings=16, vocab_size=vocab)
        if "head_dim" in config:
            config["head_dim"] = hd
        tied = config.get("tie_word_embeddings", False)
        names = qwen_names(0)
        glob = {"wte": "model.embed_tokens.weight", "ln_f": "model.norm.weight", "head": "lm_head.weight"}
    q, kvw = heads * hd, kv * hd
    shapes = {"attn_norm": [d], "q": [q, d], "k": [kvw, d], "v": [kvw, d], "o": [d, q], "mlp_norm": [d],
              "gate": [hidden, d], "up": [hidden, d], "down": [d, hidden], "q_bias": [q], "k_bias": [kvw],
              "v_bias": [kvw], "q_norm": [hd], "k_norm": [hd]}
    roles = ["attn_norm", "q", "k", "v", "o", "mlp_norm", "gate", "up", "down"]
    if config.get("model_type") in ("Dream", "fast_dllm_qwen") or "Dream" in str(config.get("architectures")) \
            or "Fast_dLLM" in str(config.get("architectures")):
        roles += ["q_bias", "k_bias", "v_bias"]
    if config.get("model_type") == "sdar":
        roles += ["q_norm", "k_norm"]
    tensors = [(glob["wte"], dtype, [vocab, d]), (glob["ln_f"], dtype, [d])]
    if not tied:
        tensors.append((glob["head"], dtype, [vocab, d]))
    tensors += [(names[r], dtype, shapes[r]) for r in roles]
    return json.dumps(config, indent=1).encode(), tensors


def write(target, name, data):
    path = os.path.join(OUT, target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def model_directories():
    rng = random.Random(1)
    for family in ["tiny_llada_mha", "tiny_llada_gqa", "tiny_dream", "tiny_fast_dllm_v2", "tiny_sdar"]:
        for dtype in ["BF16", "F32"]:
            config, tensors = mini_model(family, dtype)
            single = safetensors(tensors, {"format": "pt"}, rng)
            write("model_directory", f"{family}_{dtype.lower()}", config + MARK + MARK + single)
            write("model_config", family, config)
        config, tensors = mini_model(family, "BF16")
        generation = json.dumps({"eos_token_id": [98, 97], "temperature": 0.2}).encode()
        write("model_directory", f"{family}_generation_config",
              config + MARK + MARK + safetensors(tensors, None, rng) + MARK + MARK + generation)
        config, tensors = mini_model(family, "BF16")
        half = len(tensors) // 2
        shards = [tensors[:half], tensors[half:]]
        weight_map = {name: f"model-0000{i + 1}-of-00002.safetensors" for i, s in enumerate(shards)
                      for name, _, _ in s}
        index = json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}).encode()
        write("model_directory", f"{family}_sharded",
              config + MARK + index + MARK + safetensors(shards[0], None, rng) + MARK + safetensors(shards[1], None, rng))
    for m in ["tiny-llada", "tiny-ar"]:
        write("model_config", m, open(os.path.join(ROOT, "models", m, "config.json"), "rb").read())


def safetensors_files():
    rng = random.Random(2)
    write("safetensors", "empty", safetensors([]))
    write("safetensors", "metadata", safetensors([("a", "F32", [2])], {"format": "pt", "k": "v"}, rng))
    for dtype in DTYPE_SIZE:
        write("safetensors", dtype.lower(), safetensors([("w", dtype, [3, 2]), ("b", dtype, [2])], None, rng))
    write("safetensors", "scalar_and_zero", safetensors([("s", "F32", []), ("z", "BF16", [0, 4]), ("x", "F16", [5])],
                                                        None, rng))


def mini_tokenizer(layout_file, merges_as_pairs):
    """The layout's sections with a vocabulary of the 256 byte symbols, a few merges and added tokens."""
    full = json.load(open(os.path.join(ROOT, layout_file)))
    vocab_r = sorted(full["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab, merges = {}, []
    for token, _ in vocab_r[:256]:
        vocab[token] = len(vocab)
    for m in full["model"]["merges"][:200]:
        a, b = (m if isinstance(m, list) else m.split(" "))
        if a in vocab and b in vocab and a + b not in vocab and len(vocab) < 300:
            vocab[a + b] = len(vocab)
            merges.append([a, b] if merges_as_pairs else f"{a} {b}")
    model = dict(full["model"], vocab=vocab, merges=merges)
    added = []
    for a in full.get("added_tokens", [])[:4]:
        a = dict(a, id=len(vocab) + len(added))
        added.append(a)
    post = full.get("post_processor")
    if post and post.get("type") == "TemplateProcessing":  # its ids must name the new added tokens
        post = None
    out = dict(full, model=model, added_tokens=added, post_processor=post)
    return json.dumps(out, ensure_ascii=False).encode()


def tokenizers():
    write("tokenizer_load", "gpt2_layout", mini_tokenizer("models/tiny-llada/tokenizer.json", False))
    write("tokenizer_load", "qwen2_layout", mini_tokenizer("tests/data/tokenizer/qwen2/tokenizer.json", True))
    write("tokenizer_load", "llama3_layout", mini_tokenizer("tests/data/tokenizer/llama3/tokenizer.json", True))
    texts = []
    for line in open(os.path.join(ROOT, "tests", "data", "tokenizer", "qwen2", "cases.jsonl"), encoding="utf-8"):
        t = json.loads(line).get("text")
        if isinstance(t, str) and 0 < len(t.encode()) <= 200:
            texts.append(t)
    picked = texts[:: max(1, len(texts) // 40)][:40]
    picked += ["<|eos|>In the beginning<|mask|>", "<|im_end|>\n<|endoftext|>", "<|begin_of_text|>Hi"]
    for i, t in enumerate(picked):
        for target in ["tokenizer_encode", "tokenizer_round_trip"]:
            write(target, f"text_{i:02d}", bytes([i % 3 + (4 if i % 2 else 0)]) + t.encode())


def chat_and_configs():
    templates = os.path.join(ROOT, "tests", "data", "chat", "templates")
    for folder, _, names in sorted(os.walk(templates)):
        for name in sorted(names):
            if name.endswith(".jinja"):
                write("chat_template", os.path.splitext(name)[0], open(os.path.join(folder, name), "rb").read())
    for m in ["tiny-llada", "tiny-ar"]:
        write("tokenizer_config", m, open(os.path.join(ROOT, "models", m, "tokenizer_config.json"), "rb").read())
    path = os.path.join(ROOT, "tests", "data", "tokenizer", "llama3", "configs.jsonl")
    for i, line in enumerate(open(path, encoding="utf-8")):
        config = json.loads(line).get("tokenizer_config")
        if isinstance(config, dict):
            write("tokenizer_config", f"llama3_{i:02d}", json.dumps(config).encode())


def regressions():
    """fuzz/regressions/: one input per class of failure found by review and
    fuzzing (issue 14), each of which crashed, hung or was silently accepted
    before its fix; replayed by tests/fuzz/test_fuzz_regressions.cpp. Inputs
    libFuzzer finds are copied there by hand, beside these."""
    out = os.path.join(ROOT, "fuzz", "regressions")
    rng = random.Random(3)

    def put(target, name, data):
        os.makedirs(os.path.join(out, target), exist_ok=True)
        with open(os.path.join(out, target, name), "wb") as f:
            f.write(data)

    deep = b"[" * 100000 + b"]" * 100000
    put("model_config", "deep_nesting", b'{"architectures": ' + deep + b', "model_type": "x"}')
    put("tokenizer_load", "deep_nesting", b'{"model": ' + deep + b'}')
    put("tokenizer_config", "deep_nesting", b' {"chat_template": ' + deep + b'}')
    header = b'{"a": ' + deep + b'}'
    put("safetensors", "deep_nesting", struct.pack("<Q", len(header)) + header)

    tok = json.loads(mini_tokenizer("models/tiny-llada/tokenizer.json", False))
    tok["model"]["vocab"]["zzz_far"] = 2147483000
    put("tokenizer_load", "id_near_2_31", json.dumps(tok).encode())

    def directory(name, edit=None, tensors_edit=None, family="tiny_llada_mha"):
        config, tensors = mini_model(family, "BF16")
        c = json.loads(config)
        if edit:
            edit(c)
        if tensors_edit:
            tensors = tensors_edit(tensors)
        put("model_directory", name, json.dumps(c).encode() + MARK + MARK + safetensors(tensors, None, rng))

    directory("n_layers_1e15", lambda c: c.update(n_layers=10 ** 15))
    directory("n_layers_2_62_qwen", lambda c: c.update(num_hidden_layers=2 ** 62), family="tiny_dream")
    directory("max_sequence_length_2_40", lambda c: c.update(max_sequence_length=2 ** 40))
    directory("d_model_2_40", lambda c: c.update(d_model=2 ** 40))
    directory("rope_theta_1e-300", lambda c: c.update(rope_theta=1e-300))
    directory("rms_norm_eps_1e300", lambda c: c.update(rms_norm_eps=1e300))
    directory("mask_is_eos", lambda c: c.update(mask_token_id=c["eos_token_id"]))
    second = [(n.replace("blocks.0.", "blocks.1."), d, s) for n, d, s in mini_model("tiny_llada_mha", "BF16")[1]
              if "blocks.0." in n]
    directory("fewer_layers_than_checkpoint", tensors_edit=lambda t: t + second)
    directory("tied_beside_head_tensor", lambda c: c.update(weight_tying=True))


if __name__ == "__main__":
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    regressions()
    model_directories()
    safetensors_files()
    tokenizers()
    chat_and_configs()
    for target in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, target))
        size = sum(os.path.getsize(os.path.join(OUT, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")
