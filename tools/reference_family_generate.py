#!/usr/bin/env python3
"""Reference decode runs for the Qwen-layout families on their tiny checkpoints.

Each family is decoded with its published generation algorithm, re-implemented
in our own code (tools/reference_generate.py has the shared pieces and the
trace / decision-margin recorder), on the tiny checkpoint that
tools/make_family_goldens.py writes, run through transformers'
Qwen2ForCausalLM / Qwen3ForCausalLM in float32 (eager attention, the family's
attention as a 4-D additive mask, positions 0..L-1):

* Dream (``tests/data/tiny_dream``): HKUNLP/Dream ``generation_utils.py``
  ``DreamGenerationMixin._sample`` (``reference_generate.dream_generate``)
  with Dream's logit shift, ``logits = cat([logits[:, :1], logits[:, :-1]], 1)``,
  applied by the model wrapper to every forward: position i is predicted from
  the output at i-1, so the first generated position from the last prompt
  position.  Full attention, no blocks.
* Fast-dLLM v2 (``tests/data/tiny_fast_dllm_v2``): NVlabs Fast-dLLM v2
  ``modeling.py`` ``Fast_dLLM_QwenForCausalLM.generate`` at temperature 0
  (``fast_dllm_v2_generate``): the prompt's whole blocks prefilled, then per
  block of ``bd_size`` sub-blocks of ``small_block_size``, each step
  committing the sub-block's masked positions with probability above the
  threshold and always the most probable one; a full block is run once more
  to store it, and its last position's argmax (the head's own output: the
  shift) starts the next block.
* SDAR (``tests/data/tiny_sdar``): JetAstra SDAR ``generate.py``
  ``block_diffusion_generate`` (``sdar_generate``), blocks aligned at 0, the
  prompt's whole blocks prefilled, at most ``denoising_steps`` steps per
  block committing ``get_num_transfer_tokens(block_length, steps)[step]``
  positions by ``remasking_strategy``; temperature 0 taken as its limit (the
  argmax and its softmax probability; the published sampler divides by the
  temperature).

The block decoders recompute the canvas up to the current block's end with the
block-causal mask instead of reading a K/V cache: the same arithmetic on the
same values, since no position attends to a later block.  Deviations shared
with the C++ decoder (unmask/decode/block_diffusion_decoder.hpp), none of
which changes a token: the run stops at the end of the canvas (the last
block's store pass and Fast-dLLM v2's token after it are not run); a prompt of
exactly one block is prefilled (Fast-dLLM v2 prefills only longer ones); the
mask token is never chosen (the published argmax may pick it and then commits
a mask, which never finishes the block); stop tokens are not looked for (the
cases decode the whole canvas).

Output: ``tests/data/decode/<family>_goldens.json`` in the format of
``tests/data/decode/goldens.json`` (tests/data/README.md), read by
tests/decode/test_diffusion_goldens.cpp.  Deterministic: rerun with

    .venv-families/bin/python tools/reference_family_generate.py [--check]

(the environment of tools/make_family_goldens.py, which must have run first).
"""

import argparse
import collections
import json
import os
import sys

import torch
import transformers

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_family_goldens as mfg  # noqa: E402
import reference_generate as rg  # noqa: E402


class FamilyModel:
    """Callable x [B, L] -> logits [B, L, V] float32 under the family's attention and shift; counts calls."""

    def __init__(self, name):
        cfg, qwen3, attention, block, shifted, _, _ = mfg.MODELS[name]
        tensors = mfg.read_weights(os.path.join(mfg.DATA_DIR, name))
        self.hf = mfg.build_hf_model(cfg, qwen3, tensors)
        self.name = name
        self.attention, self.block, self.shifted = attention, block, shifted
        self.mask_id = cfg["mask_token_id"]
        self.max_len = cfg["max_position_embeddings"]
        self.calls = 0

    @torch.no_grad()
    def __call__(self, x, raw=False):
        B, L = x.shape
        assert L <= self.max_len, (L, self.max_len)
        mask = rg.mg.additive_mask(rg.mg.allowed_matrix(L, self.attention, self.block)).expand(B, 1, L, L)
        pos = torch.arange(L, dtype=torch.long)[None].expand(B, L)
        logits = self.hf(input_ids=x.to(torch.long), attention_mask=mask, position_ids=pos,
                         use_cache=False).logits.to(torch.float32)
        self.calls += 1
        if self.shifted and not raw:  # Dream generation_utils.py: position i from the output at i - 1
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits


def _commit_positions(rec, positions):
    rec.trace.append(sorted(int(p) for p in positions))


def _greedy(logits_rows, mask_id):
    """argmax token (never the mask token) and its float32 softmax probability per row."""
    p = torch.softmax(logits_rows.to(torch.float32), dim=-1)
    x0 = p.index_fill(-1, torch.tensor([mask_id]), -1.0).argmax(dim=-1)
    return x0, p.gather(-1, x0[:, None])[:, 0]


@torch.no_grad()
def fast_dllm_v2_generate(model, prompt, gen_length, block_length, sub_block_length, threshold, rec):
    """Fast-dLLM v2 ``generate`` (temperature 0, batch 1) on a canvas of P + gen_length positions."""
    assert prompt.shape[0] == 1
    B, S, P = block_length, sub_block_length, prompt.shape[1]
    L = P + gen_length
    x = prompt[0].tolist()
    nfe = 0
    if P >= B:  # prefill the whole blocks; a block boundary at P: its first token from the last row
        raw = model(torch.tensor([x[:P // B * B]]), raw=True)[0]
        nfe += 1
        committed = []
        if P % B == 0 and P < L:
            x.append(int(_greedy(raw[-1:], model.mask_id)[0]))
            committed.append(P)
            rec.argmax_gap(raw[-1:])
        _commit_positions(rec, committed)
    while len(x) < L:
        start = len(x) // B * B
        end = min(start + B, L)
        x += [model.mask_id] * (end - len(x))
        for sub in range(start, end, S):
            while any(t == model.mask_id for t in x[sub:min(sub + S, end)]):
                logits = model(torch.tensor([x[:end]]))[0]
                nfe += 1
                cand = [q for q in range(sub, min(sub + S, end)) if x[q] == model.mask_id]
                rows = logits[cand]
                x1, p1 = _greedy(rows, model.mask_id)
                best = int(p1.argmax())
                take = [i for i in range(len(cand)) if i == best or float(p1[i]) > threshold]
                for i in range(len(cand)):
                    rec.margin(float(p1[i]) - threshold)
                ordered = torch.sort(p1.to(torch.float64), descending=True).values
                rec.ranking_gap(ordered, 1)
                rec.argmax_gap(rows)
                rec.check_commit(x1[take])
                for i in take:
                    x[cand[i]] = int(x1[i])
                _commit_positions(rec, [cand[i] for i in take])
        if end >= L:
            break
        raw = model(torch.tensor([x[:end]]), raw=True)[0]  # store the block; the next block's first token
        nfe += 1
        x.append(int(_greedy(raw[end - 1:end], model.mask_id)[0]))
        rec.argmax_gap(raw[end - 1:end])
        _commit_positions(rec, [end])
    return torch.tensor([x]), nfe


@torch.no_grad()
def sdar_generate(model, prompt, gen_length, block_length, steps, strategy, threshold, rec):
    """SDAR ``block_diffusion_generate`` (temperature 0, batch 1); P + gen_length must fill whole blocks."""
    assert prompt.shape[0] == 1
    B, P = block_length, prompt.shape[1]
    L = P + gen_length
    assert L % B == 0, "SDAR decodes whole blocks"
    base, extra = B // steps, B % steps
    counts = [base + (1 if s < extra else 0) for s in range(steps)]
    x = prompt[0].tolist() + [model.mask_id] * gen_length
    nfe = 0
    if P // B > 0:
        model(torch.tensor([x[:P // B * B]]))
        nfe += 1
        _commit_positions(rec, [])
    for blk in range(P // B, L // B):
        begin, end = blk * B, (blk + 1) * B
        for step in range(steps + 1):
            cand = [q for q in range(begin, end) if x[q] == model.mask_id]
            if not cand:
                if end < L:  # store the block's K/V
                    model(torch.tensor([x[:end]]))
                    nfe += 1
                    _commit_positions(rec, [])
                break
            assert step < steps, "masks left after the last step"
            logits = model(torch.tensor([x[:end]]))[0]
            nfe += 1
            rows = logits[cand]
            x0, p0 = _greedy(rows, model.mask_id)
            n = counts[step]
            if n > len(cand):
                rec.problems.append(f"count {n} exceeds the {len(cand)} masked positions")
            n = min(n, len(cand))
            ordered = torch.sort(p0.to(torch.float64), descending=True)
            if strategy == "sequential":
                take = list(range(n))
            elif strategy == "low_confidence_static":
                take = ordered.indices[:n].tolist()
                rec.ranking_gap(ordered.values, n)
            elif strategy == "low_confidence_dynamic":
                for i in range(len(cand)):
                    rec.margin(float(p0[i]) - threshold)
                high = [i for i in range(len(cand)) if float(p0[i]) > threshold]
                if len(high) >= n:
                    take = high
                else:
                    take = ordered.indices[:n].tolist()
                    rec.ranking_gap(ordered.values, n)
            else:
                raise ValueError(strategy)
            rec.argmax_gap(rows)
            rec.check_commit(x0[take])
            for i in take:
                x[cand[i]] = int(x0[i])
            _commit_positions(rec, [cand[i] for i in take])
    return torch.tensor([x]), nfe


def run_block_case(model, case, seed=None):
    name, algorithm, params, batch, plen, case_seed = case
    seed = case_seed if seed is None else seed
    prompts = rg.make_prompts(batch, plen, seed)
    rec = rg.Recorder(model.mask_id)
    calls = model.calls
    p = params
    if algorithm == "fast_dllm_v2":
        out, nfe = fast_dllm_v2_generate(model, prompts, p["gen_length"], p["block_length"], p["sub_block_length"],
                                         p["threshold"], rec)
    else:
        out, nfe = sdar_generate(model, prompts, p["gen_length"], p["block_length"], p["steps"], p["strategy"],
                                 p["threshold"], rec)
    assert nfe == model.calls - calls == len(rec.trace), (nfe, model.calls - calls, len(rec.trace))
    assert torch.equal(out[:, :plen], prompts) and not bool((out == model.mask_id).any()), name
    committed = [q for step in rec.trace for q in step]
    assert sorted(committed) == list(range(plen, plen + p["gen_length"])), f"{name}: trace is not a partition"
    ok = rec.min_gap >= rg.ARGMAX_GAP_MIN and rec.min_margin >= rg.DECISION_MARGIN_MIN and not rec.problems
    return dict(prompts=prompts, output=out, nfe=nfe, rec=rec, ok=ok, seed=seed)


def block_case_json(case, res):
    name, algorithm, params = case[:3]
    d = collections.OrderedDict()
    d["name"] = name
    d["algorithm"] = algorithm
    d["prompts"] = res["prompts"].tolist()
    for key in ("gen_length", "block_length", "sub_block_length", "steps", "strategy", "threshold"):
        if key in params:
            d[key] = params[key]
    d["temperature"] = 0.0
    d["output"] = res["output"].tolist()
    d["nfe"] = res["nfe"]
    d["trace"] = res["rec"].trace
    finite = lambda v: float(f"{v:.4g}") if v != float("inf") else None  # None: no such decision
    d["min_decision_margin"] = finite(res["rec"].min_margin)
    d["min_argmax_logit_gap"] = finite(res["rec"].min_gap)
    return d


# family -> (model, cases); cases as in reference_generate.CASES (seeds chosen with --search-seeds).
FAMILIES = {
    "dream": ("tiny_dream", [
        ("dream_maskgit_plus_gen24_steps12", "dream",
         dict(gen_length=24, block_length=24, steps=12, alg="maskgit_plus", eps=0.001), 1, 8, 100),
        ("dream_topk_margin_gen24_steps8", "dream",
         dict(gen_length=24, block_length=24, steps=8, alg="topk_margin", eps=0.001), 1, 6, 200),
        ("dream_entropy_gen24_steps24", "dream",
         dict(gen_length=24, block_length=24, steps=24, alg="entropy", eps=0.001), 1, 7, 300),
        ("dream_entropy_gen32_steps16", "dream",
         dict(gen_length=32, block_length=32, steps=16, alg="entropy", eps=0.001), 1, 9, 403),
        ("dream_maskgit_plus_batch2_gen16_steps16", "dream",
         dict(gen_length=16, block_length=16, steps=16, alg="maskgit_plus", eps=0.001), 2, 5, 500),
        ("dream_topk_margin_gen20_steps5", "dream",
         dict(gen_length=20, block_length=20, steps=5, alg="topk_margin", eps=0.001), 1, 4, 600),
    ]),
    # The tiny models' probabilities are small (vocabulary 100, random weights): thresholds of
    # 0.05-0.1 make steps commit several positions, 0.9 (the published default) one at a time.
    "fast_dllm_v2": ("tiny_fast_dllm_v2", [
        ("fast_dllm_v2_threshold0.9_gen24_prompt6", "fast_dllm_v2",
         dict(gen_length=24, block_length=4, sub_block_length=2, threshold=0.9), 1, 6, 700),
        ("fast_dllm_v2_threshold0.06_gen24_prompt6", "fast_dllm_v2",
         dict(gen_length=24, block_length=4, sub_block_length=2, threshold=0.06), 1, 6, 800),
        ("fast_dllm_v2_threshold0.05_gen20_prompt8_boundary", "fast_dllm_v2",
         dict(gen_length=20, block_length=4, sub_block_length=4, threshold=0.05), 1, 8, 900),
        ("fast_dllm_v2_threshold0.08_gen18_prompt3", "fast_dllm_v2",
         dict(gen_length=18, block_length=4, sub_block_length=2, threshold=0.08), 1, 3, 1000),
        ("fast_dllm_v2_threshold0.1_gen30_prompt5_subblock1", "fast_dllm_v2",
         dict(gen_length=30, block_length=4, sub_block_length=1, threshold=0.1), 1, 5, 1100),
    ]),
    "sdar": ("tiny_sdar", [
        ("sdar_dynamic0.85_gen24_prompt4_steps4", "sdar",
         dict(gen_length=24, block_length=4, steps=4, strategy="low_confidence_dynamic", threshold=0.85), 1, 4, 1200),
        ("sdar_dynamic0.06_gen26_prompt6_steps4", "sdar",
         dict(gen_length=26, block_length=4, steps=4, strategy="low_confidence_dynamic", threshold=0.06), 1, 6, 1300),
        ("sdar_static_gen24_prompt8_steps2", "sdar",
         dict(gen_length=24, block_length=4, steps=2, strategy="low_confidence_static", threshold=0.85), 1, 8, 1400),
        ("sdar_sequential_gen20_prompt4_steps4", "sdar",
         dict(gen_length=20, block_length=4, steps=4, strategy="sequential", threshold=0.85), 1, 4, 1500),
        ("sdar_dynamic0.08_gen25_prompt7_steps4", "sdar",
         dict(gen_length=25, block_length=4, steps=4, strategy="low_confidence_dynamic", threshold=0.08), 1, 7, 1600),
    ]),
}


def run_any(model, case, seed=None):
    return run_block_case(model, case, seed) if case[1] in ("fast_dllm_v2", "sdar") else rg.run_case(model, case, seed)


def any_json(case, res):
    return block_case_json(case, res) if case[1] in ("fast_dllm_v2", "sdar") else rg.case_json(case, res)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files, do not write")
    ap.add_argument("--search-seeds", action="store_true", help="print the first passing seed of every case")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, python {sys.version.split()[0]}")
    status = 0
    for family, (model_name, cases) in FAMILIES.items():
        model = FamilyModel(model_name)
        if args.search_seeds:
            for case in cases:
                seed = case[-1]
                while not (res := run_any(model, case, seed))["ok"]:
                    seed += 1
                print(f"{case[0]:44s} seed {seed} nfe {res['nfe']} steps {rg.histogram(res['rec'].trace)}")
            continue
        out, failed = [], []
        for case in cases:
            res = run_any(model, case)
            rec = res["rec"]
            print(f"{case[0]:44s} {res['nfe']:4d}  {rg.histogram(rec.trace):28s} {rec.min_margin:10.3g} "
                  f"{rec.min_gap:8.3g}" + ("" if res["ok"] else "  FAIL " + "; ".join(rec.problems)))
            if not res["ok"]:
                failed.append(case[0])
            out.append(any_json(case, res))
        if failed:
            sys.exit(f"decision margins violated in {failed}: choose other seeds (--search-seeds)")
        doc = collections.OrderedDict()
        doc["reference"] = (f"tools/reference_family_generate.py, transformers {transformers.__version__} "
                            f"Qwen2ForCausalLM/Qwen3ForCausalLM float32, torch {torch.__version__}")
        doc["model"] = model_name
        doc["mask_token_id"] = model.mask_id
        doc["cases"] = out
        text = rg.to_json(doc) + "\n"
        assert json.loads(text)["cases"][0]["name"] == cases[0][0]
        path = os.path.join(mfg.DATA_DIR, "decode", f"{family}_goldens.json")
        if args.check:
            with open(path) as f:
                same = f.read() == text
            print(f"{os.path.relpath(path, mfg.REPO_ROOT)}: {'identical' if same else 'DIFFERENT'}")
            status |= 0 if same else 1
            continue
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(path, mfg.REPO_ROOT)} ({len(text)} bytes, {len(out)} cases)")
    sys.exit(status)


if __name__ == "__main__":
    main()
