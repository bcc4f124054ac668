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
    def __call__(self, x):
        B, L = x.shape
        assert L <= self.max_len, (L, self.max_len)
        mask = rg.mg.additive_mask(rg.mg.allowed_matrix(L, self.attention, self.block)).expand(B, 1, L, L)
        pos = torch.arange(L, dtype=torch.long)[None].expand(B, L)
        logits = self.hf(input_ids=x.to(torch.long), attention_mask=mask, position_ids=pos,
                         use_cache=False).logits.to(torch.float32)
        self.calls += 1
        if self.shifted:  # Dream generation_utils.py: position i from the output at i - 1
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits


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
}


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
                while not (res := rg.run_case(model, case, seed))["ok"]:
                    seed += 1
                print(f"{case[0]:44s} seed {seed} nfe {res['nfe']} steps {rg.histogram(res['rec'].trace)}")
            continue
        out, failed = [], []
        for case in cases:
            res = rg.run_case(model, case)
            rec = res["rec"]
            print(f"{case[0]:44s} {res['nfe']:4d}  {rg.histogram(rec.trace):28s} {rec.min_margin:10.3g} "
                  f"{rec.min_gap:8.3g}" + ("" if res["ok"] else "  FAIL " + "; ".join(rec.problems)))
            if not res["ok"]:
                failed.append(case[0])
            out.append(rg.case_json(case, res))
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
