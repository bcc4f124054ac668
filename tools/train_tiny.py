#!/usr/bin/env python3
"""Train unmask's two tiny embedded default models on the King James Bible.

* ``models/tiny-llada/``: masked diffusion LM (LLaDA architecture, full
  bidirectional attention, logits[i] predicts token i), trained with the
  LLaDA / MDLM objective.
* ``models/tiny-ar/``: its autoregressive twin: same architecture, sizes,
  tokenizer, data, data order, seed and number of training tokens, but causal
  attention and next-token loss (logits[i] predicts token i+1).

Everything is written in the exact on-disk layout of GSAI-ML/LLaDA-8B
(``config.json`` with LLaDA's keys plus one ``unmask_objective`` key,
``model.safetensors`` with ``model.transformer.*`` bf16 tensors), plus the
byte-level BPE ``tokenizer.json`` (identical in both directories), a
``train_log.json`` and a model card ``README.md``.

Pipeline (all deterministic given ``--seed``):

1. Corpus: Debian package ``bible-kjv-text`` (``/usr/lib/bible.data``, the
   compressed text of the Bible Retrieval System).  The file is a header, a
   big-endian table of chunk offsets and a sequence of Unix ``compress``
   (LZW) streams that share a single 3-byte ``compress`` header; each chunk is
   decompressed with ``gzip -dc`` (which reads the ``compress`` format).  Each
   line is ``<Book><chapter>:<verse> <text>``; the reference is stripped.
   Held-out split: every chapter whose 0-based canonical index c satisfies
   ``c % 50 == 25`` (24 of 1189 chapters, about 2% of the verses).
2. Tokenizer: byte-level BPE (Hugging Face ``tokenizers``), 4093 learned
   entries (256 byte symbols + merges) trained on the training verses, then
   the special tokens ``<|pad|>``, ``<|eos|>``, ``<|mask|>`` appended (ids
   4093, 4094, 4095; vocabulary 4096).  No normalizer, ByteLevel
   pre-tokenizer (add_prefix_space false, GPT-2 regex), ByteLevel decoder, no
   post-processor.
3. Data: each verse is encoded on its own and followed by ``<|eos|>``; the
   verses are concatenated in canonical order and cut into contiguous
   128-token windows (a per-epoch seeded offset and shuffle).
4. Model: the LLaDA "llama" block, written here from the formulas (see
   ``TinyLLaDA``), checked against transformers' ``LlamaForCausalLM`` before
   training (``verify_against_transformers``).
5. Objectives.  Diffusion (Nie et al. 2025, "Large Language Diffusion
   Models", arXiv:2502.09992; Sahoo et al. 2024, MDLM, arXiv:2406.07524):
   per sequence t ~ U(eps, 1), eps = 1e-3 (t = (1 - eps) u + eps), each token
   replaced by ``<|mask|>`` independently with probability t, loss =
   sum over masked positions of CE / t, divided by batch * seq_len (an upper
   bound on the NLL per token, in nats).  AR: next-token cross-entropy.

Retrain both models (both at the same time, one thread each, ~30 minutes on a
2-core CPU; the AR run uses exactly the same data stream and step count):

    apt-get install bible-kjv-text        # the corpus (sudo if not root)
    tools/setup_venv.sh
    .venv-tools/bin/pip install -r tools/requirements-train.txt
    OMP_NUM_THREADS=1 nohup nice -n 19 .venv-tools/bin/python tools/train_tiny.py \\
        --objective masked_diffusion --out models/tiny-llada --epochs 3 > /tmp/tiny-llada.log 2>&1 &
    OMP_NUM_THREADS=1 nohup nice -n 19 .venv-tools/bin/python tools/train_tiny.py \\
        --objective autoregressive --out models/tiny-ar --epochs 3 > /tmp/tiny-ar.log 2>&1 &
    wait
    .venv-tools/bin/python tools/train_tiny.py --cards         # models/*/README.md
    .venv-tools/bin/python tools/train_tiny.py --heldout-data  # tests/data/heldout/
    .venv-tools/bin/python tools/plot_tiny.py                  # docs/tiny-models.png

(The defaults of ``--d-model``, ``--n-layers``, ``--n-heads``, ``--mlp-hidden``,
``--epochs``, ``--batch``, ``--lr`` and ``--seed`` are the values used for the
committed models.)  ``--bench N`` times N training steps and exits.
``--heldout-data`` writes ``tests/data/heldout/`` (see tests/data/README.md);
``--cards`` writes the model cards.  ``--max-minutes`` (time) and
``--stop-at`` / ``--stop-file`` (step) are early stops; see the model cards for
whether the committed runs used one.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import struct
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIBLE_DATA = "/usr/lib/bible.data"
CORPUS_PACKAGE = "bible-kjv-text"

SPECIAL_TOKENS = ["<|pad|>", "<|eos|>", "<|mask|>"]
VOCAB_SIZE = 4096
HELDOUT_MOD, HELDOUT_REM = 50, 25
DIFFUSION_EPS = 1e-3


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------

def package_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout:
        sys.exit(f"package {pkg} is not installed (apt-get install {pkg})")
    return r.stdout.strip()


def read_bible_text(path=BIBLE_DATA):
    """Decompress the Bible Retrieval System data file into its text lines."""
    with open(path, "rb") as f:
        d = f.read()
    assert d[:4] == b"EC02", "unexpected bible.data magic"
    n_chunks = struct.unpack(">I", d[0x58:0x5C])[0]
    offs = struct.unpack(">%dI" % (n_chunks + 1), d[0x5C:0x5C + 4 * (n_chunks + 1)])
    assert offs[-1] == len(d)
    # The first chunk is preceded by the 3-byte compress header (1f 9d 90:
    # magic, block mode, 16-bit codes); the later chunks share it.
    header = d[offs[0] - 3:offs[0]]
    assert header == b"\x1f\x9d\x90", header
    out = []
    for a, b in zip(offs[:-1], offs[1:]):
        r = subprocess.run(["gzip", "-dc"], input=header + d[a:b], capture_output=True)
        if r.returncode != 0:
            sys.exit(f"gzip -dc failed on chunk at {a}: {r.stderr!r}")
        out.append(r.stdout)
    return b"".join(out).decode("ascii")


VERSE_RE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.+)$")


def load_verses():
    """[(book, chapter, verse, text, chapter_index)] in canonical order."""
    lines = read_bible_text().split("\n")
    assert lines[0].startswith("Holy Bible"), lines[0]
    verses = []
    chap_index = -1
    last = None
    for line in lines[1:]:
        if not line:
            continue
        m = VERSE_RE.match(line)
        assert m, line
        book, ch, vs, text = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if (book, ch) != last:
            chap_index += 1
            last = (book, ch)
        text = " ".join(text.split())
        verses.append((book, ch, vs, text, chap_index))
    assert len(verses) == 31102 and chap_index + 1 == 1189, (len(verses), chap_index + 1)
    return verses


def split_verses(verses):
    train = [v[3] for v in verses if v[4] % HELDOUT_MOD != HELDOUT_REM]
    held = [v[3] for v in verses if v[4] % HELDOUT_MOD == HELDOUT_REM]
    return train, held


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------

def train_tokenizer(train_texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(train_texts, trainer=trainer)
    assert tok.get_vocab_size() == VOCAB_SIZE - len(SPECIAL_TOKENS), tok.get_vocab_size()
    tok.add_special_tokens(SPECIAL_TOKENS)
    assert tok.get_vocab_size() == VOCAB_SIZE
    ids = {s: tok.token_to_id(s) for s in SPECIAL_TOKENS}
    assert ids == {"<|pad|>": 4093, "<|eos|>": 4094, "<|mask|>": 4095}, ids
    return tok


def encode_stream(tok, texts, eos_id):
    out = []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        out.extend(enc.ids)
        out.append(eos_id)
    return torch.tensor(out, dtype=torch.long)


# --------------------------------------------------------------------------
# Model: the LLaDA "llama" block
# --------------------------------------------------------------------------

class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Block(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, H, KV = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
        hd = d // H
        ff = cfg["mlp_hidden_size"]
        self.H, self.KV, self.hd = H, KV, hd
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)  # noqa: E731
        self.attn_norm = RMSNorm(d, cfg["rms_norm_eps"])
        self.q_proj, self.k_proj, self.v_proj = lin(d, H * hd), lin(d, KV * hd), lin(d, KV * hd)
        self.attn_out = lin(H * hd, d)
        self.ff_norm = RMSNorm(d, cfg["rms_norm_eps"])
        self.ff_proj, self.up_proj = lin(d, ff), lin(d, ff)  # SwiGLU gate / up
        self.ff_out = lin(ff, d)  # down projection

    def forward(self, x, cos, sin, causal):
        B, L, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, L, self.H, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, L, self.KV, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, L, self.KV, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.KV != self.H:
            k = k.repeat_interleave(self.H // self.KV, dim=1)
            v = v.repeat_interleave(self.H // self.KV, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        if causal:
            m = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
            att = att.masked_fill(m, float("-inf"))
        att = torch.softmax(att.float(), dim=-1).to(q.dtype)
        o = (att @ v).transpose(1, 2).reshape(B, L, self.H * self.hd)
        x = x + self.attn_out(o)
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


class TinyLLaDA(torch.nn.Module):
    """LLaDA llama-block transformer; ``causal`` selects the attention mode."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg["d_model"]
        self.hd = d // cfg["n_heads"]
        self.wte = torch.nn.Embedding(cfg["embedding_size"], d)
        self.blocks = torch.nn.ModuleList([Block(cfg) for _ in range(cfg["n_layers"])])
        self.ln_f = RMSNorm(d, cfg["rms_norm_eps"])
        assert not cfg["weight_tying"]
        self.ff_out = torch.nn.Linear(d, cfg["embedding_size"], bias=False)

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        std = 0.02
        out_std = std / math.sqrt(2 * self.cfg["n_layers"])
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("norm.weight") or name == "ln_f.weight":
                    p.fill_(1.0)
                elif name.endswith("attn_out.weight") or (name.startswith("blocks.") and name.endswith("ff_out.weight")):
                    p.copy_(torch.randn(p.shape, generator=g) * out_std)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * std)

    def rope(self, L, device):
        hd = self.hd
        inv_freq = 1.0 / (self.cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.arange(L, dtype=torch.float32)[:, None] * inv_freq[None]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(device), emb.sin().to(device)

    def forward(self, ids, causal):
        cos, sin = self.rope(ids.shape[1], ids.device)
        x = self.wte(ids)
        for blk in self.blocks:
            x = blk(x, cos, sin, causal)
        return self.ff_out(self.ln_f(x))

    # LLaDA tensor names <-> module names
    def llada_state_dict(self, dtype=torch.bfloat16):
        out = {}
        for name, p in self.state_dict().items():
            out["model.transformer." + name] = p.detach().to(dtype).contiguous()
        return out

    def load_llada_state_dict(self, tensors):
        sd = {k[len("model.transformer."):]: v.to(torch.float32) for k, v in tensors.items()}
        self.load_state_dict(sd, strict=True)


def llada_config(a, objective):
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
        "d_model": a.d_model,
        "embedding_dropout": 0.0,
        "embedding_size": VOCAB_SIZE,
        "eos_token_id": 4094,
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
        "mask_token_id": 4095,
        "max_sequence_length": 512,
        "mlp_hidden_size": a.mlp_hidden,
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": a.n_heads,
        "n_kv_heads": a.n_heads,
        "n_layers": a.n_layers,
        "pad_token_id": 4093,
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": 10000.0,
        "scale_logits": False,
        "unmask_objective": objective,
        "use_cache": False,
        "vocab_size": VOCAB_SIZE,
        "weight_tying": False,
    }


# --------------------------------------------------------------------------
# Check against transformers' LlamaForCausalLM
# --------------------------------------------------------------------------

def llada_to_hf_name(name):
    top = {
        "model.transformer.wte.weight": "model.embed_tokens.weight",
        "model.transformer.ln_f.weight": "model.norm.weight",
        "model.transformer.ff_out.weight": "lm_head.weight",
    }
    if name in top:
        return top[name]
    idx, rest = name[len("model.transformer.blocks."):].split(".", 1)
    return f"model.layers.{idx}." + {
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


@torch.no_grad()
def verify_against_transformers(cfg, seed, L=40, tol=1e-5):
    """Our module vs LlamaForCausalLM (float32 eager), full and causal attention."""
    from transformers import LlamaConfig, LlamaForCausalLM

    model = TinyLLaDA(cfg).eval()
    model.init_weights(seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # perturb the norms so they are exercised
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    hf_cfg = LlamaConfig(
        vocab_size=cfg["embedding_size"], hidden_size=cfg["d_model"],
        intermediate_size=cfg["mlp_hidden_size"], num_hidden_layers=cfg["n_layers"],
        num_attention_heads=cfg["n_heads"], num_key_value_heads=cfg["n_kv_heads"],
        hidden_act="silu", max_position_embeddings=cfg["max_sequence_length"],
        rms_norm_eps=cfg["rms_norm_eps"], rope_theta=cfg["rope_theta"], rope_scaling=None,
        tie_word_embeddings=False, attention_bias=False, attention_dropout=0.0,
        pretraining_tp=1, use_cache=False, attn_implementation="eager")
    hf = LlamaForCausalLM(hf_cfg).to(torch.float32).eval()
    sd = {llada_to_hf_name(k): v for k, v in model.llada_state_dict(torch.float32).items()}
    hf.load_state_dict(sd, strict=True)
    ids = torch.randint(0, cfg["embedding_size"], (2, L), generator=g)
    pos = torch.arange(L)[None].expand(2, L)
    worst = {}
    for mode in ("full", "causal"):
        ours = model(ids, causal=(mode == "causal"))
        if mode == "causal":
            ref = hf(input_ids=ids, position_ids=pos, use_cache=False).logits
        else:
            mask = torch.zeros(2, 1, L, L)  # 4-D additive mask: 0 = attend everywhere
            ref = hf(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        worst[mode] = (ours - ref).abs().max().item()
        assert worst[mode] < tol, (mode, worst[mode])
    # The two modes must actually differ (the mask is honoured).
    assert (model(ids, causal=True) - model(ids, causal=False)).abs().max().item() > 1e-3
    return worst


# --------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------

def ar_loss(model, x):
    logits = model(x, causal=True)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))


def diffusion_loss(model, x, t, masked, mask_id):
    """LLaDA loss: sum over masked positions of CE / t, divided by B * L."""
    inp = torch.where(masked, torch.full_like(x, mask_id), x)
    logits = model(inp, causal=False)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1), reduction="none").view(x.shape)
    w = masked.float() / t[:, None]
    return (ce * w).sum() / x.numel()


def draw_masks(B, L, g, eps=DIFFUSION_EPS):
    t = (1 - eps) * torch.rand(B, generator=g) + eps
    masked = torch.rand(B, L, generator=g) < t[:, None]
    return t, masked


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def windows(stream, L, offset=0):
    n = (stream.numel() - offset) // L
    return stream[offset:offset + n * L].view(n, L)


def make_eval_set(held_stream, L, seed, draws):
    w = windows(held_stream, L)
    g = torch.Generator().manual_seed(seed + 777)
    xs = w.repeat(draws, 1)
    t, masked = draw_masks(xs.shape[0], L, g)
    return w, xs, t, masked


@torch.no_grad()
def evaluate(model, objective, ev, mask_id, bs=32):
    model.eval()
    w, xs, t, masked = ev
    tot, n = 0.0, 0
    if objective == "autoregressive":
        for i in range(0, w.shape[0], bs):
            x = w[i:i + bs]
            tot += ar_loss(model, x).item() * x.shape[0] * (x.shape[1] - 1)
            n += x.shape[0] * (x.shape[1] - 1)
    else:
        for i in range(0, xs.shape[0], bs):
            x = xs[i:i + bs]
            tot += diffusion_loss(model, x, t[i:i + bs], masked[i:i + bs], mask_id).item() * x.numel()
            n += x.numel()
    model.train()
    return tot / n


def build_data(a):
    verses = load_verses()
    train_texts, held_texts = split_verses(verses)
    tok = train_tokenizer(train_texts)
    eos = tok.token_to_id("<|eos|>")
    train_stream = encode_stream(tok, train_texts, eos)
    held_stream = encode_stream(tok, held_texts, eos)
    info = dict(n_verses=len(verses), n_train_verses=len(train_texts), n_heldout_verses=len(held_texts),
                n_chapters=1189, n_heldout_chapters=sum(1 for c in range(1189) if c % HELDOUT_MOD == HELDOUT_REM),
                train_tokens=int(train_stream.numel()), heldout_tokens=int(held_stream.numel()),
                train_chars=sum(len(s) for s in train_texts))
    return tok, train_stream, held_stream, info


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t_start = time.time()
    obj = a.objective
    cfg = llada_config(a, obj)
    worst = verify_against_transformers(cfg, a.seed)
    print(f"verified against transformers LlamaForCausalLM: max |diff| {worst}", flush=True)

    tok, train_stream, held_stream, info = build_data(a)
    mask_id = tok.token_to_id("<|mask|>")
    print(json.dumps(info), flush=True)
    L, B = a.seq_len, a.batch
    n_windows = (train_stream.numel() - L) // L  # same count every epoch, whatever the offset
    steps_per_epoch = n_windows // B
    total_steps = a.steps if a.steps else steps_per_epoch * a.epochs
    eval_every = max(1, steps_per_epoch // a.evals_per_epoch)
    ev = make_eval_set(held_stream, L, a.seed, a.eval_draws)

    model = TinyLLaDA(cfg)
    model.init_weights(a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        p = (step - a.warmup) / max(1, total_steps - a.warmup)
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    data_g = torch.Generator().manual_seed(a.seed + 1)   # data order: identical for both objectives
    mask_g = torch.Generator().manual_seed(a.seed + 2)   # diffusion t / masks
    log = dict(objective=obj, args=vars(a), config=cfg, data=info, n_params=n_params,
               steps_per_epoch=steps_per_epoch, total_steps=total_steps, tokens_per_step=B * L,
               verify_max_abs_diff=worst, evals=[], started=datetime.datetime.utcnow().isoformat() + "Z")
    if a.out:
        os.makedirs(a.out, exist_ok=True)

    def do_eval(step, epoch_end):
        te = time.time()
        loss = evaluate(model, obj, ev, mask_id)
        rec = dict(step=step, epoch=step / steps_per_epoch, tokens_seen=step * B * L, heldout_loss=loss,
                   epoch_end=epoch_end, train_loss_recent=(sum(recent) / len(recent) if recent else None),
                   wall_s=time.time() - t_start, eval_s=time.time() - te)
        log["evals"].append(rec)
        print(json.dumps(rec), flush=True)
        if a.out:
            save_json(os.path.join(a.out, "train_log.json"), log)

    recent = []
    step = 0
    t_train = time.time()
    do_eval(0, False)
    epoch = 0
    stopped_early = False
    while step < total_steps:
        off = int(torch.randint(0, L, (1,), generator=data_g))
        w = windows(train_stream, L, off)[:n_windows]
        perm = torch.randperm(n_windows, generator=data_g)
        for i in range(steps_per_epoch):
            if step >= total_steps:
                break
            x = w[perm[i * B:(i + 1) * B]]
            t, masked = draw_masks(B, L, mask_g)  # drawn for both objectives: same RNG use
            for gr in opt.param_groups:
                gr["lr"] = lr_at(step)
            if obj == "autoregressive":
                loss = ar_loss(model, x)
            else:
                loss = diffusion_loss(model, x, t, masked, mask_id)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
            step += 1
            recent.append(loss.item())
            recent = recent[-50:]
            if step % 20 == 0:
                el = time.time() - t_train
                print(f"step {step}/{total_steps} loss {loss.item():.4f} lr {lr_at(step):.2e} "
                      f"{el / step:.3f}s/step", flush=True)
            if a.bench and step >= a.bench:
                el = time.time() - t_train
                print(f"BENCH {obj}: {el / step:.3f} s/step, {B * L * step / el:.0f} tok/s, params {n_params}, "
                      f"steps/epoch {steps_per_epoch}, est. epoch {steps_per_epoch * el / step / 60:.1f} min")
                return
            if step % eval_every == 0 or step == total_steps:
                do_eval(step, step % steps_per_epoch == 0 or step == total_steps)
            if a.stop_file and step % 10 == 0 and os.path.exists(a.stop_file):
                with open(a.stop_file) as f:
                    n_stop = int(f.read().strip() or 0)
                if n_stop >= step and (not a.stop_at or n_stop < a.stop_at):
                    a.stop_at = n_stop  # recorded in the log's args: reproduce with --stop-at
                    print(f"stop file: stopping at step {n_stop}", flush=True)
            if a.stop_at and step >= a.stop_at:
                stopped_early = True
                total_steps = step
                break
            if a.max_minutes and time.time() - t_start > a.max_minutes * 60:
                stopped_early = True
                total_steps = step
                break
        epoch += 1
        if stopped_early:
            if not log["evals"] or log["evals"][-1]["step"] != step:
                do_eval(step, True)
            break

    log["stopped_early"] = stopped_early
    log["total_steps"] = step
    log["tokens_trained"] = step * B * L
    log["wall_s"] = time.time() - t_start
    log["train_wall_s"] = time.time() - t_train
    log["finished"] = datetime.datetime.utcnow().isoformat() + "Z"
    log["final_heldout_loss"] = log["evals"][-1]["heldout_loss"]
    log["machine"] = f"{platform.machine()} {os.cpu_count()}-core CPU, torch {torch.__version__}, " \
                     f"{a.threads} thread(s)"
    log["corpus"] = dict(package=CORPUS_PACKAGE, version=package_version(CORPUS_PACKAGE), file=BIBLE_DATA)
    if a.out:
        save_model(a.out, cfg, model, tok)
        save_json(os.path.join(a.out, "train_log.json"), log)
        # Reload the saved bf16 weights and re-evaluate (what users get).
        m2 = load_model(a.out)
        log["final_heldout_loss_bf16"] = evaluate(m2, obj, ev, mask_id)
        save_json(os.path.join(a.out, "train_log.json"), log)
        print("final held-out loss (bf16 weights):", log["final_heldout_loss_bf16"], flush=True)


def save_model(out, cfg, model, tok):
    from safetensors.torch import save_file

    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    save_file(model.llada_state_dict(torch.bfloat16), os.path.join(out, "model.safetensors"),
              metadata={"format": "pt"})
    tok.save(os.path.join(out, "tokenizer.json"))


def load_model(d):
    from safetensors.torch import load_file

    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    tensors = load_file(os.path.join(d, "model.safetensors"))
    for k, v in tensors.items():
        assert v.dtype == torch.bfloat16, k
    m = TinyLLaDA(cfg).eval()
    m.load_llada_state_dict(tensors)
    return m


# --------------------------------------------------------------------------
# tests/data/heldout
# --------------------------------------------------------------------------

HELDOUT_T = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 0.5]


def write_heldout_data(a):
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    torch.set_num_threads(a.threads)
    tok = Tokenizer.from_file(os.path.join(a.diffusion_dir, "tokenizer.json"))
    with open(os.path.join(a.ar_dir, "tokenizer.json")) as f1, \
            open(os.path.join(a.diffusion_dir, "tokenizer.json")) as f2:
        assert f1.read() == f2.read(), "tokenizer.json files differ"
    verses = load_verses()
    _, held_texts = split_verses(verses)
    held = encode_stream(tok, held_texts, tok.token_to_id("<|eos|>"))
    Lw, n = 64, 8
    stride = (held.numel() - Lw) // (n - 1)
    tokens = torch.stack([held[i * stride:i * stride + Lw] for i in range(n)])
    g = torch.Generator().manual_seed(a.seed + 4242)
    t = torch.tensor(HELDOUT_T, dtype=torch.float32)
    masked = torch.zeros(n, Lw, dtype=torch.bool)
    for i in range(n):
        while True:
            m = torch.rand(Lw, generator=g) < t[i]
            if m.any():
                break
        masked[i] = m
    ar = load_model(a.ar_dir)
    dm = load_model(a.diffusion_dir)
    mask_id = dm.cfg["mask_token_id"]
    with torch.no_grad():
        ar_nll = ar_loss(ar, tokens).item()
        diff = diffusion_loss(dm, tokens, t, masked, mask_id).item()
    out_dir = os.path.join(REPO_ROOT, "tests", "data", "heldout")
    os.makedirs(out_dir, exist_ok=True)
    save_file({"tokens": tokens.to(torch.int32).contiguous(), "masked": masked.to(torch.uint8).contiguous(),
               "t": t.contiguous()}, os.path.join(out_dir, "heldout_eval.safetensors"))
    exp = {
        "ar_model": os.path.relpath(a.ar_dir, REPO_ROOT),
        "diffusion_model": os.path.relpath(a.diffusion_dir, REPO_ROOT),
        "ar_mean_nll": ar_nll,
        "ar_predicted_positions": n * (Lw - 1),
        "diffusion_loss": diff,
        "diffusion_masked_positions": int(masked.sum()),
        "diffusion_normaliser": n * Lw,
        "mask_token_id": mask_id,
        "window_starts": [i * stride for i in range(n)],
        "t": HELDOUT_T,
        "reference": f"tools/train_tiny.py module, float32 from the bf16 safetensors, torch {torch.__version__}",
    }
    save_json(os.path.join(out_dir, "expected.json"), exp)
    print(json.dumps(exp, indent=2))


# --------------------------------------------------------------------------
# Model cards
# --------------------------------------------------------------------------

RETRAIN_CMD = {
    "masked_diffusion": "OMP_NUM_THREADS=1 nice -n 19 .venv-tools/bin/python tools/train_tiny.py "
                        "--objective masked_diffusion --out models/tiny-llada --epochs 3",
    "autoregressive": "OMP_NUM_THREADS=1 nice -n 19 .venv-tools/bin/python tools/train_tiny.py "
                      "--objective autoregressive --out models/tiny-ar --epochs 3",
}


def write_card(d):
    with open(os.path.join(d, "train_log.json")) as f:
        log = json.load(f)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    obj = cfg["unmask_objective"]
    a = log["args"]
    data = log["data"]
    name = os.path.basename(os.path.normpath(d))
    twin = "tiny-ar" if obj == "masked_diffusion" else "tiny-llada"
    hd = cfg["d_model"] // cfg["n_heads"]
    size = os.path.getsize(os.path.join(d, "model.safetensors"))
    per_epoch = [e for e in log["evals"] if e["epoch_end"] or e["step"] == 0]
    rows = "\n".join(f"| {e['epoch']:.2f} | {e['step']} | {e['tokens_seen']:,} | {e['heldout_loss']:.4f} |"
                     for e in per_epoch)
    if obj == "masked_diffusion":
        kind = ("a masked diffusion language model (LLaDA architecture: full bidirectional attention, "
                "`logits[i]` predicts token `i`; masked positions hold `<|mask|>`)")
        objective = ("LLaDA / MDLM masked diffusion (Nie et al. 2025, arXiv:2502.09992; Sahoo et al. 2024, "
                     "arXiv:2406.07524): per sequence t = (1 - 1e-3) u + 1e-3, u ~ U(0, 1); each token is "
                     "replaced by `<|mask|>` independently with probability t; loss = sum over masked "
                     "positions of CE / t, divided by batch x seq_len.")
        metric = ("held-out negative ELBO (the same 1/t-weighted masked CE, an upper bound on the NLL), "
                  f"nats/token, with {a['eval_draws']} fixed pre-drawn (t, mask) pairs per held-out "
                  "128-token window (seeded, identical at every evaluation)")
    else:
        kind = ("an autoregressive language model, the twin of `tiny-llada` (same architecture and sizes, "
                "causal attention, `logits[i]` predicts token `i+1`)")
        objective = "next-token cross-entropy."
        metric = "held-out mean next-token NLL, nats/token, over all 128-token held-out windows"
    started = log["started"][:10]
    cpu = "CPU"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        if names:
            cpu = names[0]
    machine = f"{os.cpu_count()}-core {cpu} CPU, Debian torch 1.13.1 (reports {torch.__version__}), 1 thread"
    cmd = RETRAIN_CMD[obj]
    if a.get("stop_at"):
        cmd += f" --stop-at {a['stop_at']}"
        stop_note = (f"The run was stopped at step {a['stop_at']} of the {log['steps_per_epoch'] * a['epochs']} "
                     f"steps of its {a['epochs']}-epoch cosine schedule (both twins at the same step, to fit "
                     "the time budget); `--stop-at` reproduces that.")
    else:
        stop_note = f"The run completed its {a['epochs']}-epoch schedule (no early stop)."
    text = f"""# {name}

{name} is {kind}. It is one of unmask's two embedded default models, trained
with `tools/train_tiny.py`; its twin is `models/{twin}/` (same tokenizer, data,
data order, seed and number of training tokens). It is a toy: it produces
KJV-flavoured text, nothing more.

## Files

| file | contents |
|------|----------|
| `config.json` | GSAI-ML/LLaDA-8B config keys, plus `"unmask_objective": "{obj}"` |
| `model.safetensors` | bf16 tensors with LLaDA names (`model.transformer.wte.weight`, `model.transformer.blocks.{{i}}.{{attn_norm,q_proj,k_proj,v_proj,attn_out,ff_norm,ff_proj,up_proj,ff_out}}.weight`, `model.transformer.ln_f.weight`, `model.transformer.ff_out.weight`), {size:,} bytes |
| `tokenizer.json` | byte-level BPE (Hugging Face `tokenizers` format), identical in both model directories |
| `train_log.json` | arguments, config, data statistics, all held-out evaluations, wall time |

## Corpus

King James Version of the Bible (1611) from the Debian package
`{log['corpus']['package']}` version {log['corpus']['version']} (`{log['corpus']['file']}`, the Bible
Retrieval System's compressed text; decompressed with `gzip -dc` chunk by chunk).
Licence: public domain (the package's `/usr/share/doc/bible-kjv-text/copyright`:
"The copyright for the King James Version text of the Bible is expired since the
translation was done in 1611"; the file itself is provided "for unrestricted use").
Verse references (`Ge1:1 ...`) are stripped; whitespace is collapsed; no other
change. {data['n_verses']:,} verses, {data['n_chapters']} chapters.

Held-out split: every chapter whose 0-based canonical index c (Genesis 1 = 0,
..., Revelation 22 = 1188) has `c % 50 == 25` ({data['n_heldout_chapters']} chapters,
{data['n_heldout_verses']} verses, {data['heldout_tokens']:,} tokens, about 2%). Training split:
the other {data['n_train_verses']:,} verses ({data['train_chars']:,} characters,
{data['train_tokens']:,} tokens including one `<|eos|>` per verse).

## Tokenizer

Byte-level BPE trained with Hugging Face `tokenizers` 0.19.1 on the training
verses: 256 byte symbols + 3837 merges = 4093 entries, then the special tokens
appended: `<|pad|>` = 4093, `<|eos|>` = 4094, `<|mask|>` = 4095 (vocabulary 4096).
No normalizer, `ByteLevel` pre-tokenizer (`add_prefix_space: false`, GPT-2
regex), `ByteLevel` decoder, no post-processor. Each verse is encoded on its
own and followed by `<|eos|>` (there is no BOS).

## Model

LLaDA "llama" block, pre-norm: `h = x + attn_out(Attn(RMSNorm(x)))`,
`out = h + ff_out(silu(ff_proj(RMSNorm(h))) * up_proj(RMSNorm(h)))`; RMSNorm eps 1e-5;
RoPE (half rotation) theta 10000; attention scale 1/sqrt(head_dim); no biases;
final `ln_f`, untied output head `model.transformer.ff_out.weight`; no logit scaling.

| | |
|-|-|
| d_model | {cfg['d_model']} |
| layers | {cfg['n_layers']} |
| heads (q = kv) | {cfg['n_heads']} (head_dim {hd}) |
| mlp_hidden_size | {cfg['mlp_hidden_size']} |
| vocab_size = embedding_size | {cfg['vocab_size']} |
| training context | {a['seq_len']} tokens (`max_sequence_length` {cfg['max_sequence_length']}: longer contexts rely on RoPE extrapolation) |
| parameters | {log['n_params']:,} (embedding {cfg['embedding_size'] * cfg['d_model']:,}, head {cfg['embedding_size'] * cfg['d_model']:,}) |
| attention | {"full (bidirectional)" if obj == "masked_diffusion" else "causal"} |

The training module was checked against transformers' `LlamaForCausalLM`
(float32, eager; full attention through a 4-D additive mask) before training:
max |logit difference| {log['verify_max_abs_diff']}.

## Training

Objective: {objective}

AdamW (betas 0.9/0.95, weight decay {a['wd']} on matrices, grad clip {a['clip']}), peak LR
{a['lr']}, {a['warmup']} warm-up steps, cosine decay to {a['min_lr_frac']} x peak; batch {a['batch']}
windows of {a['seq_len']} contiguous tokens (verses packed with `<|eos|>` separators; a
seeded random offset and shuffle per epoch), seed {a['seed']}, float32.
{log['total_steps']:,} steps = {log['total_steps'] / log['steps_per_epoch']:.2f} epochs = {log['tokens_trained']:,} training tokens.
Wall time {log['wall_s'] / 60:.1f} min ({machine}; both models trained at the same
time, one thread each, under `nice -n 19`), {started}.

## Held-out loss

Metric: {metric}.

| epoch | step | tokens seen | held-out loss |
|------:|-----:|------------:|--------------:|
{rows}

Final held-out loss: {log['final_heldout_loss']:.4f} (float32 training weights),
{log['final_heldout_loss_bf16']:.4f} (the saved bf16 weights). See `docs/tiny-models.png`.

## Retraining

From the repository root (after `tools/setup_venv.sh`,
`.venv-tools/bin/pip install -r tools/requirements-train.txt` and
`apt-get install bible-kjv-text`):

    {cmd}

Deterministic given the seed and the same software (torch 1.13.1 CPU, one thread).
{stop_note}
"""
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write(text)
    print("wrote", os.path.join(d, "README.md"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--objective", choices=["masked_diffusion", "autoregressive"])
    p.add_argument("--out", help="output model directory (e.g. models/tiny-llada)")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--mlp-hidden", type=int, default=704)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=0, help="override the number of steps (0: epochs)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-frac", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1611)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--evals-per-epoch", type=int, default=4)
    p.add_argument("--eval-draws", type=int, default=2, help="(t, mask) draws per held-out window (diffusion)")
    p.add_argument("--max-minutes", type=float, default=0, help="safety stop (0: none)")
    p.add_argument("--stop-at", type=int, default=0,
                   help="stop after this many steps, keeping the LR schedule of --epochs (0: no stop)")
    p.add_argument("--stop-file", default="",
                   help="if this file appears and holds an integer N, behave as --stop-at N (checked every 10 steps)")
    p.add_argument("--bench", type=int, default=0, help="time N steps and exit")
    p.add_argument("--heldout-data", action="store_true", help="write tests/data/heldout/ from trained models")
    p.add_argument("--diffusion-dir", default=os.path.join(REPO_ROOT, "models", "tiny-llada"))
    p.add_argument("--ar-dir", default=os.path.join(REPO_ROOT, "models", "tiny-ar"))
    p.add_argument("--cards", action="store_true", help="write README.md model cards from train_log.json")
    a = p.parse_args()
    if a.cards:
        write_card(a.diffusion_dir)
        write_card(a.ar_dir)
        return
    if a.heldout_data:
        write_heldout_data(a)
        return
    if not a.objective:
        p.error("--objective is required")
    train(a)


if __name__ == "__main__":
    main()
