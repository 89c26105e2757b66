#!/usr/bin/env python3
"""Golden greedy outputs of the tiny test models, computed by HF transformers in float32.

Usage (transformers 5.x and torch; a GPU is optional):

    node scripts/gen-tiny-models.ts /tmp/tiny-models
    python3 scripts/make-golden.py --models-dir /tmp/tiny-models --out test/fixtures/golden [--device cpu]

For each model folder (<models-dir>/<name>/, as written by scripts/gen-tiny-models.ts) this loads the model
with AutoModelForCausalLM in float32 with eager attention, TF32 off and deterministic algorithms, tokenizes a
fixed list of prompts with the folder's tokenizer.json (the `tokenizers` library, as Updraft's tokenizer reads
it; its post-processor adds BOS), greedy-decodes exactly --new-tokens tokens ignoring EOS (a plain loop with
the KV cache, no logits processors), and writes <out>/<name>.json in the format of
../shared/models/*/golden.json:

    {model, transformers, torch, dtype, greedy_new_tokens, eos_ignored,
     cases: [{prompt, prompt_ids, output_ids, output_text, top5_logprobs: [[[id, logprob], x5] per step]}]}

plus fields the TypeScript tests check against: device, weights_sha256 (of model.safetensors, so a golden
file computed from other bytes is caught) and inv_freq (HF's RoPE inverse frequencies, float32 values).
Each case also says whether AutoTokenizer agrees with tokenizer.json (auto_tokenizer_ids_equal): for
the tiny-qwen2 folder, transformers 5.17 picks its tokenizer class from model_type qwen2 and gets other ids.
"""
import argparse
import hashlib
import json
import os
import sys

PROMPTS = [
    "",
    "Once upon a time",
    "Lily and Tom went to the park. They saw",
    "The little dog was sad because",
    "One day, a big red ball",
    "Ben had a toy car. He",
    "Sara liked to draw.",
    "The sun was hot and",
]
DEFAULT_MODELS = ["tiny-llama", "tiny-llama3", "tiny-qwen2", "tiny-mistral"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", required=True, help="folder holding one subfolder per model")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model folder names")
    ap.add_argument("--out", default="test/fixtures/golden", help="output folder for <model>.json")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--new-tokens", type=int, default=64)
    return ap.parse_args()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_deterministic(torch):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.set_float32_matmul_precision("highest")
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


def load(model_dir, device):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    auto_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    # bf16 / f16 checkpoints: upcasting is exact, and the reference is a float32 computation.
    model = model.float().to(device).eval()
    for p in model.parameters():
        assert p.dtype == torch.float32, f"parameter in {p.dtype}"
    return tokenizer, auto_tokenizer, model


def greedy(model, prompt_ids, new_tokens, device):
    import torch

    output_ids, top5 = [], []
    past = None
    step_input = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    with torch.no_grad():
        for _ in range(new_tokens):
            out = model(input_ids=step_input, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            token = int(torch.argmax(logits).item())  # first maximum = lowest id on ties, like ud sample
            values, indices = torch.topk(logprobs, 5)
            top5.append([[int(i), round(float(v), 5)] for v, i in zip(values.tolist(), indices.tolist())])
            output_ids.append(token)
            step_input = torch.tensor([[token]], dtype=torch.long, device=device)
    return output_ids, top5


def rope_inv_freq(model):
    rotary = getattr(getattr(model, "model", model), "rotary_emb", None)
    if rotary is None or not hasattr(rotary, "inv_freq"):
        return None
    return [float(x) for x in rotary.inv_freq.detach().float().cpu().tolist()]


def golden_for(name, model_dir, device, new_tokens):
    import torch
    import transformers

    tokenizer, auto_tokenizer, model = load(model_dir, device)
    bos = model.config.bos_token_id
    cases = []
    for prompt in PROMPTS:
        prompt_ids = tokenizer.encode(prompt).ids
        if bos is not None and (not prompt_ids or prompt_ids[0] != bos):
            raise SystemExit(f"{name}: tokenizer.json did not add BOS to {prompt!r}: {prompt_ids}")
        output_ids, top5 = greedy(model, prompt_ids, new_tokens, device)
        cases.append({
            "prompt": prompt,
            "prompt_ids": prompt_ids,
            "auto_tokenizer_ids_equal": auto_tokenizer(prompt).input_ids == prompt_ids,
            "output_ids": output_ids,
            "output_text": tokenizer.decode(output_ids, skip_special_tokens=False),
            "top5_logprobs": top5,
        })
        print(f"  {prompt!r}: {output_ids[:12]}...", file=sys.stderr)
    return {
        "model": name,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
        "greedy_new_tokens": new_tokens,
        "eos_ignored": True,
        "device": device,
        "weights_sha256": sha256_of(os.path.join(model_dir, "model.safetensors")),
        "inv_freq": rope_inv_freq(model),
        "cases": cases,
    }


def main():
    args = parse_args()
    # cuBLAS needs this before CUDA starts to run deterministically.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    make_deterministic(torch)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(args.out, exist_ok=True)
    for name in [m for m in args.models.split(",") if m]:
        model_dir = os.path.join(args.models_dir, name)
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise SystemExit(f"{model_dir}/config.json not found: run `node scripts/gen-tiny-models.ts {args.models_dir}` first")
        print(f"{name} on {device}", file=sys.stderr)
        golden = golden_for(name, model_dir, device, args.new_tokens)
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w") as f:
            json.dump(golden, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
