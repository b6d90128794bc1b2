"""Self-distillation data for the draft heads: the frozen base model's own greedy continuations.

Prompts are random windows of the corpus; the base model continues each greedily (batched, with a
KV cache). Because a greedy sequence continues greedily from every point, every position t in the
generated part is a training example: (hidden state at t, pending token x[t+1]) -> x[t+2 : t+2+k],
exactly what the drafter sees at serving time.

Output: <out>/{train,val}.npz with `tokens` uint16 [N, prompt_len + gen_len] per prompt length.
"""
import argparse, os, time

import numpy as np
import torch

from training.model import BaseModel, ModelConfig
from training.common import setup_device, autocast, load_tokens, random_windows
from training.progress import bar, elapsed, summary


def load_base(path, device):
    state = torch.load(path, map_location="cpu")
    model = BaseModel(ModelConfig(**state["config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval()


@torch.no_grad()
def greedy_generate(model, prompts, gen_len, device):
    """prompts [B,Lp] int64 -> [B, Lp+gen_len]; KV-cached batched greedy decoding."""
    B, Lp = prompts.shape
    x = prompts.to(device)
    pos = torch.arange(Lp, device=device).unsqueeze(0).expand(B, Lp)
    past = [(None, None)] * len(model.blocks)
    with autocast(device):
        logits, _, past = model.forward_cached(x, pos, None, past)
    out = [x]
    nxt = logits[:, -1].float().argmax(-1, keepdim=True)
    for i in range(gen_len):
        out.append(nxt)
        if i == gen_len - 1:
            break
        p = torch.full((B, 1), Lp + i, device=device, dtype=torch.long)
        with autocast(device):
            logits, _, past = model.forward_cached(nxt, p, None, past)
        nxt = logits[:, -1].float().argmax(-1, keepdim=True)
    return torch.cat(out, 1).cpu()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="checkpoints/base/ckpt.pt")
    ap.add_argument("--data", default="data/tokens")
    ap.add_argument("--out", default="data/distill")
    ap.add_argument("--sequences", type=int, default=4096, help="training prompts per prompt length")
    ap.add_argument("--val-sequences", type=int, default=256)
    ap.add_argument("--prompt-lens", default="32,96,224")
    ap.add_argument("--gen-len", type=int, default=160)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    device = setup_device(args.device, args.threads or None)
    model = load_base(args.base, device)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    lps = list(map(int, args.prompt_lens.split(",")))
    total = (args.sequences + args.val_sequences) * len(lps)
    progress = bar(total=total, desc="distill", unit="seq")
    generated = 0
    for split, n in (("train", args.sequences), ("val", args.val_sequences)):
        tokens = load_tokens(os.path.join(args.data, f"{split}.bin"))
        rng = np.random.default_rng(0 if split == "train" else 1)
        arrays = {}
        for lp in lps:
            chunks = []
            for start in range(0, n, args.batch):
                prompts = random_windows(tokens, min(args.batch, n - start), lp, rng)
                chunks.append(greedy_generate(model, prompts, args.gen_len, device).numpy().astype(np.uint16))
                progress.set_postfix_str(f"{split} prompt_len {lp}", refresh=False)
                progress.update(len(prompts))
                generated += len(prompts) * args.gen_len
            arrays[f"p{lp}"] = np.concatenate(chunks)
            progress.write(f"{split} prompt_len {lp}: {arrays[f'p{lp}'].shape} ({time.time() - t0:.0f}s)")
        np.savez(os.path.join(args.out, f"{split}.npz"), **arrays)
    progress.close()
    summary(f"distill: {total} sequences, {generated / 1e6:.2f}M greedy tokens in {elapsed(t0)} "
            f"({generated / (time.time() - t0):.0f} tokens/s) -> {args.out}")


if __name__ == "__main__":
    main()
