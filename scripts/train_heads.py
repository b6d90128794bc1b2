#!/usr/bin/env python3
"""Train a draft head on the frozen base model's greedy continuations (from distill.py).

  --kind ctc     the paper's CTC draft head: `slots` outputs over vocab+blank, CTC loss against the
                 next k tokens after the pending one (the alignment is learned, not fixed)
  --kind medusa  Medusa-style heads: head i predicts token i+1 after the pending one (CE loss)

Both read the same examples (hidden state at t, pending token x[t+1]) -> x[t+2 : t+2+k] and get the
same time budget, so the benchmark compares methods, not training effort.
"""
import argparse, json, os, sys, time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from model import CTCDraftHead, MedusaHeads, HeadConfig  # noqa: E402
from common import setup_device, autocast, lr_at, save_atomic, Clock  # noqa: E402
from distill import load_base  # noqa: E402


class Examples:
    """Groups of distilled sequences; yields (tokens [B,T], first valid t) batches."""

    def __init__(self, path, k):
        z = np.load(path)
        self.groups = []
        for name in z.files:
            arr = z[name].astype(np.int64)
            lp = int(name[1:])
            self.groups.append((torch.from_numpy(arr), lp))
        self.k = k

    def batch(self, n_seq, rng):
        seqs, lp = self.groups[rng.integers(len(self.groups))]
        idx = torch.from_numpy(rng.integers(0, len(seqs), size=min(n_seq, len(seqs))))
        return seqs[idx], lp


def make_examples(base, seqs, lp, k, device, per_seq, rng):
    """Base hidden states for full sequences, then sample positions t in the generated part.
    Returns hidden [N,d], pending [N], targets [N,k]."""
    seqs = seqs.to(device)
    with torch.no_grad(), autocast(device):
        _, hidden = base(seqs)
    hidden = hidden.float()
    B, T = seqs.shape
    lo, hi = lp - 1, T - k - 2  # t+1 is greedy output when t >= lp-1; targets need t+k+1 <= T-1
    t = torch.from_numpy(rng.integers(lo, hi + 1, size=(B, per_seq))).to(device)
    b = torch.arange(B, device=device).unsqueeze(1).expand(B, per_seq)
    offsets = torch.arange(k, device=device)
    h = hidden[b, t].reshape(-1, hidden.shape[-1])
    pending = seqs[b, t + 1].reshape(-1)
    targets = seqs[b.unsqueeze(-1), (t + 2).unsqueeze(-1) + offsets].reshape(-1, k)
    return h, pending, targets


def head_loss(head, kind, h, pending, targets, emb, vocab):
    out = head(h, emb[pending], emb)
    if kind == "ctc":
        N, slots, _ = out.shape
        return F.ctc_loss(out.float().transpose(0, 1), targets, torch.full((N,), slots, dtype=torch.long),
                          torch.full((N,), targets.shape[1], dtype=torch.long), blank=vocab,
                          reduction="mean", zero_infinity=True)
    k = targets.shape[1]
    w = 0.8 ** torch.arange(k, device=h.device, dtype=torch.float32)
    ce = F.cross_entropy(out.float().reshape(-1, vocab), targets.reshape(-1), reduction="none").view(-1, k)
    return (ce.mean(0) * w).sum() / w.sum()


def greedy_chain(out, kind, vocab):
    """Top-1 draft chain per example: CTC best path (collapse repeats, drop blanks) or head argmax."""
    best = out.argmax(-1).cpu().numpy()
    if kind == "medusa":
        return [list(r) for r in best]
    chains = []
    for row in best:
        seq, prev = [], -1
        for s in row:
            if s != prev and s != vocab:
                seq.append(int(s))
            prev = s
        chains.append(seq)
    return chains


@torch.no_grad()
def evaluate(head, kind, base, val, k, device, emb, vocab, batches=8):
    """Mean number of leading draft tokens equal to the base model's greedy continuation (top-1
    chain, no tree), and the held-out loss."""
    head.eval()
    rng = np.random.default_rng(7)
    acc, n, loss = 0, 0, 0.0
    for _ in range(batches):
        seqs, lp = val.batch(64, rng)
        h, pending, targets = make_examples(base, seqs, lp, k, device, 16, rng)
        with autocast(device):
            loss += head_loss(head, kind, h, pending, targets, emb, vocab).item()
            out = head(h, emb[pending], emb)
        tg = targets.cpu().numpy()
        for chain, t in zip(greedy_chain(out.float(), kind, vocab), tg):
            m = 0
            while m < min(len(chain), k) and chain[m] == t[m]:
                m += 1
            acc += m
            n += 1
    head.train()
    return acc / n, loss / batches


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["ctc", "medusa"], required=True)
    ap.add_argument("--base", default="checkpoints/base/ckpt.pt")
    ap.add_argument("--data", default="data/distill")
    ap.add_argument("--out", default=None)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--use-token", type=int, default=1)
    ap.add_argument("--seqs-per-step", type=int, default=16)
    ap.add_argument("--positions-per-seq", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default=None, help="start from these head weights (fresh optimizer)")
    args = ap.parse_args()
    device = setup_device(args.device, args.threads or None)
    out_dir = args.out or f"checkpoints/{args.kind}"
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, "ckpt.pt")

    base = load_base(args.base, device)
    for p in base.parameters():
        p.requires_grad_(False)
    emb = base.embed.weight.detach()
    vocab, d = emb.shape
    cfg = HeadConfig(kind=args.kind, d_model=d, vocab_size=vocab, k=args.k, slots=args.slots,
                     use_token=bool(args.use_token))
    state = torch.load(ckpt_path, map_location="cpu") if args.resume and os.path.exists(ckpt_path) else None
    if state or args.init:
        cfg = HeadConfig(**(state or torch.load(args.init, map_location="cpu"))["config"])
    head = (CTCDraftHead if cfg.kind == "ctc" else MedusaHeads)(cfg).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
    step, clock = 0, Clock()
    if state:
        head.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, clock = state["step"], Clock(state["elapsed"])
    elif args.init:
        init = torch.load(args.init, map_location="cpu")
        head.load_state_dict(init["model"])
        print(f"initialised from {args.init} ({init.get('step', 0)} steps)", flush=True)
    train = Examples(os.path.join(args.data, "train.npz"), cfg.k)
    val = Examples(os.path.join(args.data, "val.npz"), cfg.k)
    rng = np.random.default_rng(step)
    print(f"{cfg.kind} head: {sum(p.numel() for p in head.parameters()) / 1e6:.2f}M params, "
          f"use_token={cfg.use_token}, device {device}", flush=True)
    log_t = time.time()
    while True:
        progress = clock.elapsed() / (args.minutes * 60)
        if args.max_steps:
            progress = max(progress, step / args.max_steps)
        if progress >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(progress, args.lr, warmup=0.05)
        seqs, lp = train.batch(args.seqs_per_step, rng)
        h, pending, targets = make_examples(base, seqs, lp, cfg.k, device, args.positions_per_seq, rng)
        with autocast(device):
            loss = head_loss(head, cfg.kind, h, pending, targets, emb, vocab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        step += 1
        if time.time() - log_t > 20:
            print(f"step {step} loss {loss.item():.4f} progress {progress * 100:.0f}%", flush=True)
            log_t = time.time()
    acc, val_loss = evaluate(head, cfg.kind, base, val, cfg.k, device, emb, vocab)
    summary = {"kind": cfg.kind, "use_token": cfg.use_token, "steps": step, "minutes": clock.elapsed() / 60,
               "val_loss": val_loss, "top1_chain_accepted": acc}
    save_atomic({"config": cfg.to_dict(), "model": head.state_dict(), "optimizer": opt.state_dict(),
                 "step": step, "elapsed": clock.elapsed(), "summary": summary}, ckpt_path)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
