"""Self-distillation data for the draft heads: the frozen base model's own continuations.

Prompts are random windows of the corpus; the base model continues each (batched, with a KV cache),
greedily by default. Because a greedy sequence continues greedily from every point, every position t
in the generated part is a training example: (hidden state at t, pending token x[t+1]) ->
x[t+2 : t+2+k], exactly what the drafter sees at serving time.

With --temperature T > 0 the continuations are sampled at T instead (the text a drafter meets when
users sample), except the first --greedy-fraction of each batch, which stays greedy. A sampled
sequence is a draw from the base model's distribution, so the heads' soft targets (train_heads.py
--soft-ce) read the base distribution along it. Sampling is seeded per split (torch generator).

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
def greedy_generate(model, prompts, gen_len, device, temperature=0.0, greedy_rows=0, generator=None):
    """prompts [B,Lp] int64 -> [B, Lp+gen_len]; KV-cached batched decoding: greedy, or sampled at
    `temperature` for rows greedy_rows.. (rows before it stay greedy)."""
    B, Lp = prompts.shape
    x = prompts.to(device)
    pos = torch.arange(Lp, device=device).unsqueeze(0).expand(B, Lp)
    past = [(None, None)] * len(model.blocks)
    with autocast(device):
        logits, _, past = model.forward_cached(x, pos, None, past)
    out = [x]

    def pick(last):
        nxt = last.float().argmax(-1, keepdim=True)
        if temperature > 0 and greedy_rows < B:
            probs = torch.softmax(last[greedy_rows:].float() / temperature, -1)
            nxt[greedy_rows:] = torch.multinomial(probs.cpu(), 1, generator=generator).to(nxt.device)
        return nxt

    nxt = pick(logits[:, -1])
    for i in range(gen_len):
        out.append(nxt)
        if i == gen_len - 1:
            break
        p = torch.full((B, 1), Lp + i, device=device, dtype=torch.long)
        with autocast(device):
            logits, _, past = model.forward_cached(nxt, p, None, past)
        nxt = pick(logits[:, -1])
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
    ap.add_argument("--temperature", type=float, default=0.0, help="sample the continuations at T (0: greedy)")
    ap.add_argument("--greedy-fraction", type=float, default=0.0,
                    help="with --temperature: this fraction of each batch (its first rows) stays greedy")
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
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        arrays = {}
        for lp in lps:
            chunks = []
            for start in range(0, n, args.batch):
                prompts = random_windows(tokens, min(args.batch, n - start), lp, rng)
                greedy_rows = round(len(prompts) * args.greedy_fraction) if args.temperature > 0 else len(prompts)
                chunks.append(greedy_generate(model, prompts, args.gen_len, device, args.temperature, greedy_rows,
                                              gen).numpy().astype(np.uint16))
                progress.set_postfix_str(f"{split} prompt_len {lp}", refresh=False)
                progress.update(len(prompts))
                generated += len(prompts) * args.gen_len
            arrays[f"p{lp}"] = np.concatenate(chunks)
            progress.write(f"{split} prompt_len {lp}: {arrays[f'p{lp}'].shape} ({time.time() - t0:.0f}s)")
        np.savez(os.path.join(args.out, f"{split}.npz"), **arrays)
    progress.close()
    summary(f"distill: {total} sequences, {generated / 1e6:.2f}M tokens in {elapsed(t0)} "
            f"({generated / (time.time() - t0):.0f} tokens/s, "
            f"{'greedy' if args.temperature <= 0 else f'T {args.temperature}, greedy fraction {args.greedy_fraction}'}) -> {args.out}")


if __name__ == "__main__":
    main()
