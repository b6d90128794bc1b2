"""PyTorch reference for test/convert: LlamaForCausalLM's forward (training/export_hf.py, llama_logits)
over a Hugging Face checkpoint folder, read straight from its config.json and safetensors.

  /usr/bin/python3 test/convert/reference.py <hf_dir> <out_dir> --prompt 1,5,9,... --new 24

writes <out_dir>/logits.f32 (the prompt's logits, [len(prompt), V] float32 little-endian) and
<out_dir>/reference.json: {"greedy": [...], "margins": [...]} (greedy continuation of the prompt,
recomputed from scratch each step, stopping at bos / eos; the top-2 logit gap at each step)."""
import argparse, json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
import numpy as np
import torch

from training.export_hf import llama_logits
from training.safetensors import load_checkpoint_weights

ap = argparse.ArgumentParser()
ap.add_argument("hf_dir")
ap.add_argument("out")
ap.add_argument("--prompt", required=True)
ap.add_argument("--new", type=int, default=24)
args = ap.parse_args()
c = json.load(open(os.path.join(args.hf_dir, "config.json")))
sd = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in load_checkpoint_weights(args.hf_dir).items()}
prompt = [int(t) for t in args.prompt.split(",")]
os.makedirs(args.out, exist_ok=True)
with torch.no_grad():
    logits = llama_logits(sd, c, torch.tensor([prompt]))[0]
    logits.numpy().astype("<f4").tofile(os.path.join(args.out, "logits.f32"))
    seq, greedy, margins = list(prompt), [], []
    for _ in range(args.new):
        last = llama_logits(sd, c, torch.tensor([seq]))[0, -1]
        top = last.topk(2)
        tok = int(top.indices[0])
        greedy.append(tok)
        margins.append(float(top.values[0] - top.values[1]))
        if tok in (c["bos_token_id"], c["eos_token_id"]):
            break
        seq.append(tok)
json.dump({"greedy": greedy, "margins": margins}, open(os.path.join(args.out, "reference.json"), "w"))
