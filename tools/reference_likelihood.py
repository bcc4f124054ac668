#!/usr/bin/env python3
"""Plain-PyTorch reference for unmask's likelihood estimator (include/unmask/decode/likelihood.hpp).

What it is
----------
A re-implementation, written here from the published algorithm (no code
copied), of LLaDA's Monte-Carlo log-likelihood (ML-GSAI/LLaDA
``get_log_likelihood.py``: ``forward_process``, ``get_logits``,
``get_log_likelihood``; SPEC section 11):

* for a prompt and an answer of length L, each mini-batch of b rows draws k
  uniformly in [1, L]; row i masks exactly x_i answer positions, with
  x = round(linspace(k, k + (b - 1) L / b, b)) and x = ((x - 1) mod L) + 1,
  chosen at random (the prompt is never masked);
* the model runs on the b noisy rows (with classifier-free guidance, cfg > 0,
  also on the same rows with the prompt replaced by the mask token, and
  logits = un + (cfg + 1) (cond - un), SPEC section 6);
* each row scores the cross-entropy of its masked answer tokens divided by
  the masking ratio x_i / L; a mini-batch's value is the sum over its rows
  divided by b; -log p is the mean over the mc_num / b mini-batches and the
  log-likelihood is minus that.

The one deliberate change: PyTorch's ``torch.randint`` / ``torch.randperm``
stream cannot be reproduced in C++, so k and the masked positions come from
unmask's Philox4x32-10 counter generator (unmask/random/philox.hpp),
re-implemented below, with the plan likelihood.hpp documents:

    bits(purpose, sequence, step, position, index)
        = Philox4x32-10(counter {index >> 2, position, step, sequence},
                        key {seed_lo, seed_hi ^ purpose * 0x85EBCA6B})[index & 3]
    purpose 6; k of mini-batch m of request `id` = 1 + (bits(6, id, m, 0xFFFFFFFF, 0) * L >> 32)
    x_i = k + i L / b rounded half to even (exactly, in integers), wrapped into [1, L]
    row i masks the x_i answer positions j with the smallest (bits(6, id, m, i, j), j)

The script checks that x_i equals torch.round(torch.linspace(...)) for every
case it writes, and its Philox against Random123's known-answer vectors.

The model is models/tiny-llada (a LLaDA checkpoint, bf16 weights converted to
float32) through the eager float32 LLaDA forward of tools/peers/pytorch_llada.py
(imported; checked there against transformers' LlamaForCausalLM), full
bidirectional attention, logits[i] predicting token i. Cross-entropies are
taken in float64 from the float32 logits (as the C++ does), single-threaded.

Output
------
``tests/data/likelihood/goldens.json``:
  ``deterministic``: (prompt, answer, cfg, explicit mask sets) and each set's
      row estimate (L / |S|) * sum_{j in S} -log p(answer_j);
  ``monte_carlo``: (prompt, answer, id, mc_num, batch, seed, cfg), every
      mini-batch's k, every row's mask set and estimate, and the resulting
      log_likelihood and standard_error (of the mini-batch means; with one
      mini-batch, of the rows);
  ``philox``: a few raw bits of the likelihood stream.
Floats are written with Python's repr (shortest round-trip float64).

Rerun (deterministic; rewrites the file byte for byte):

    .venv-tools/bin/python tools/reference_likelihood.py
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "peers"))
from pytorch_llada import LLaDA, load_checkpoint  # noqa: E402

MODEL_DIR = "models/tiny-llada"
OUT = "tests/data/likelihood/goldens.json"
PURPOSE = 6
K_POSITION = 0xFFFFFFFF
M32 = 0xFFFFFFFF


# --------------------------------------------------------------------------
# Philox4x32-10 (Salmon et al., SC 2011) and unmask's counter_rng::bits
# --------------------------------------------------------------------------

def philox4x32_10(counter, key):
    m0, m1, w0, w1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, p0 & M32
        k0, k1 = (k0 + w0) & M32, (k1 + w1) & M32
    return c0, c1, c2, c3


def check_philox():
    """Random123's known-answer vectors (also in tests/random/test_philox.cpp)."""
    kat = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
           ((M32, M32, M32, M32), (M32, M32), (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
           ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
            (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]
    for counter, key, expected in kat:
        assert philox4x32_10(counter, key) == expected, (counter, key)


def bits(seed, purpose, sequence, step, position, index):
    key = (seed & M32, ((seed >> 32) ^ (purpose * 0x85EBCA6B)) & M32)
    return philox4x32_10((index >> 2, position, step, sequence), key)[index & 3]


# --------------------------------------------------------------------------
# The random plan (likelihood.hpp)
# --------------------------------------------------------------------------

def draw_k(seed, rid, minibatch, L):
    return 1 + ((bits(seed, PURPOSE, rid, minibatch, K_POSITION, 0) * L) >> 32)


def mask_count(k, row, b, L):
    """round(k + row * L / b), half to even, exactly; then ((x - 1) mod L) + 1."""
    x, rest = divmod(k * b + row * L, b)
    if 2 * rest > b or (2 * rest == b and x % 2 == 1):
        x += 1
    return (x - 1) % L + 1


def torch_mask_counts(k, b, L):
    """LLaDA forward_process's counts, computed as it does (float32 linspace, torch.round)."""
    x = torch.round(torch.linspace(float(k), k + (b - 1) * (L / b), steps=b)).long()
    return (((x - 1) % L) + 1).tolist()


def mask_set(seed, rid, minibatch, row, L, count):
    keyed = sorted((bits(seed, PURPOSE, rid, minibatch, row, j), j) for j in range(L))
    return sorted(j for _, j in keyed[:count])


def minibatch_plan(seed, rid, minibatch, L, b):
    k = draw_k(seed, rid, minibatch, L)
    counts = [mask_count(k, i, b, L) for i in range(b)]
    assert counts == torch_mask_counts(k, b, L), (k, b, L, counts)
    return k, [mask_set(seed, rid, minibatch, i, L, counts[i]) for i in range(b)]


# --------------------------------------------------------------------------
# get_log_likelihood.py's steps, with explicit mask sets
# --------------------------------------------------------------------------

def forward_process(seq, prompt_length, mask_sets, mask_id):
    """The noisy batch (rows of seq with each row's answer positions masked) and
    p_mask = x_i / L per row."""
    b, L = len(mask_sets), seq.shape[1] - prompt_length
    noisy = seq.repeat(b, 1)
    for i, s in enumerate(mask_sets):
        for j in s:
            noisy[i, prompt_length + j] = mask_id
    p_mask = torch.tensor([len(s) / L for s in mask_sets], dtype=torch.float64)
    return noisy, p_mask


def get_logits(model, batch, prompt_length, cfg, mask_id):
    """float32 logits; with cfg > 0 the unconditional copy has the prompt masked."""
    if cfg > 0:
        un = batch.clone()
        un[:, :prompt_length] = mask_id
        logits = model(torch.cat([batch, un]))
        cond, uncond = torch.chunk(logits, 2, dim=0)
        return uncond + (cfg + 1) * (cond - uncond)
    return model(batch)


def row_estimates(model, prompt, answer, mask_sets, cfg, mask_id):
    """Each row's sum over its masked positions of -log p(token) / p_mask."""
    seq = torch.tensor([prompt + answer], dtype=torch.long)
    noisy, p_mask = forward_process(seq, len(prompt), mask_sets, mask_id)
    mask_index = noisy == mask_id
    logits = get_logits(model, noisy, len(prompt), cfg, mask_id)
    target = seq.repeat(len(mask_sets), 1)
    loss = F.cross_entropy(logits[mask_index].double(), target[mask_index], reduction="none")
    weights = p_mask[:, None].expand(mask_index.shape)[mask_index]
    per_token = loss / weights
    rows = torch.arange(len(mask_sets))[:, None].expand(mask_index.shape)[mask_index]
    return [float(per_token[rows == i].sum()) for i in range(len(mask_sets))]


def standard_error(values):
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


def monte_carlo(model, prompt, answer, rid, mc_num, batch, seed, cfg, mask_id):
    """get_log_likelihood: mc_num // batch mini-batches of the plan's rows."""
    assert mc_num % batch == 0
    L = len(answer)
    ks, sets, rows, means = [], [], [], []
    for m in range(mc_num // batch):
        k, mb = minibatch_plan(seed, rid, m, L, batch)
        r = row_estimates(model, prompt, answer, mb, cfg, mask_id)
        ks.append(k)
        sets += mb
        rows += r
        means.append(sum(r) / batch)   # loss.sum() / batch_size
    ll = -(sum(means) / len(means))
    se = standard_error(means) if len(means) > 1 else standard_error(rows)
    return ks, sets, rows, ll, se


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

PAIRS = {
    "creation": ("In the beginning God created the", " heaven and the earth."),
    "light": ("And God said, Let there be light:", " and there was light."),
    "shepherd": ("The LORD is my shepherd;", " I shall not want."),
    "wept": ("", "Jesus wept."),
    "loved": ("For God so loved the world,",
              " that he gave his only begotten Son, that whosoever believeth in him should not perish."),
}


def encode_pair(tok, prompt, answer):
    """lm-eval's split: encode prompt + answer, the answer is what follows the prompt's ids."""
    ctx = tok.encode(prompt).ids if prompt else []
    whole = tok.encode(prompt + answer).ids
    assert whole[:len(ctx)] == ctx, (prompt, answer)
    return ctx, whole[len(ctx):]


def deterministic_sets(L):
    """Every position alone is too many rows; take all, a single one, halves and a few patterns."""
    sets = [list(range(L)), [0], [L - 1], list(range(0, L, 2)), list(range(1, L, 2))]
    if L > 3:
        sets += [[1, L - 2], list(range(L // 2)), [j for j in range(L) if j % 3 != 1]]
    out = []
    for s in sets:
        if s and s not in out:
            out.append(s)
    return out


def to_json(obj, indent=0):
    """JSON with lists of numbers on one line, floats as repr (byte-stable)."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        items = [f'{inner}{json.dumps(k)}: {to_json(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(to_json(v) for v in obj) + "]"
        if all(isinstance(v, list) and all(not isinstance(w, (dict, list)) for w in v) for v in obj):
            return "[\n" + ",\n".join(inner + to_json(v) for v in obj) + "\n" + pad + "]"
        return "[\n" + ",\n".join(inner + to_json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, float):
        assert math.isfinite(obj)
        return repr(obj)
    return json.dumps(obj)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, MODEL_DIR))
    ap.add_argument("--out", default=os.path.join(ROOT, OUT))
    args = ap.parse_args()

    torch.set_num_threads(1)
    check_philox()
    from tokenizers import Tokenizer

    cfg_json, tensors = load_checkpoint(args.model)
    model = LLaDA(cfg_json, tensors)
    mask_id = cfg_json["mask_token_id"]
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    ids = {name: encode_pair(tok, p, a) for name, (p, a) in PAIRS.items()}

    deterministic = []
    for name, cfg in [("creation", 0.0), ("light", 0.0), ("shepherd", 0.0), ("wept", 0.0), ("loved", 0.0),
                      ("creation", 1.0), ("wept", 0.5)]:
        prompt, answer = ids[name]
        sets = deterministic_sets(len(answer))
        with torch.inference_mode():
            est = row_estimates(model, prompt, answer, sets, cfg, mask_id)
        deterministic.append({"name": name, "prompt_text": PAIRS[name][0], "answer_text": PAIRS[name][1],
                              "prompt": prompt, "answer": answer, "cfg": cfg, "mask_sets": sets,
                              "row_estimates": est})

    monte_carlo_cases = []
    for name, rid, mc_num, batch, seed, cfg in [("creation", 0, 32, 8, 0, 0.0),
                                                ("light", 3, 16, 16, 7, 0.0),
                                                ("shepherd", 1, 12, 6, 11, 0.0),
                                                ("shepherd", 1, 8, 4, 11, 0.0),
                                                ("creation", 2, 16, 8, 3, 0.5),
                                                ("wept", 0, 4, 1, 5, 0.0),
                                                ("loved", 9, 32, 16, 1, 0.0),
                                                ("loved", 9, 10, 10, 2, 2.0)]:
        prompt, answer = ids[name]
        with torch.inference_mode():
            ks, sets, rows, ll, se = monte_carlo(model, prompt, answer, rid, mc_num, batch, seed, cfg, mask_id)
        monte_carlo_cases.append({"name": name, "prompt": prompt, "answer": answer, "id": rid, "mc_num": mc_num,
                                  "batch": batch, "seed": seed, "cfg": cfg, "ks": ks, "mask_sets": sets,
                                  "row_estimates": rows, "log_likelihood": ll, "standard_error": se})

    philox = [{"seed": s, "sequence": q, "step": t, "position": p, "index": i,
               "bits": bits(s, PURPOSE, q, t, p, i)}
              for s, q, t, p, i in [(0, 0, 0, K_POSITION, 0), (7, 3, 1, 2, 5), ((1 << 40) + 9, 12, 0, 7, 3)]]

    doc = {
        "generator": "tools/reference_likelihood.py",
        "algorithm": "ML-GSAI/LLaDA get_log_likelihood.py, masks from unmask's Philox plan (likelihood.hpp)",
        "model_dir": MODEL_DIR,
        "reference": f"pytorch_llada.LLaDA float32 eager, torch {torch.__version__.split('+')[0]}, "
                     "cross-entropy in float64",
        "mask_token_id": mask_id,
        "philox": philox,
        "deterministic": deterministic,
        "monte_carlo": monte_carlo_cases,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(to_json(doc) + "\n")
    print(f"wrote {args.out}: {len(deterministic)} deterministic, {len(monte_carlo_cases)} Monte-Carlo cases")


if __name__ == "__main__":
    main()
