"""Train a draft head on the frozen base model's greedy continuations (from distill.py).

  --kind ctc     the paper's CTC draft head: `slots` outputs over vocab+blank, CTC loss against the
                 next k tokens after the pending one (the alignment is learned, not fixed)
  --kind medusa  Medusa-style heads: head i predicts token i+1 after the pending one (CE loss)
  --kind ctc2 / medusa2   head v2 (PrefixDraftHead): the same read-outs on top of one causal layer
                 over every prefix position (input fuse([embedding of token t+1; hidden at t]))

Time-budgeted (--minutes), checkpointed every --checkpoint-minutes to <out>/ckpt.pt, resumable with
--resume (same command), with a progress bar. On CPU set OPENBLAS_CORETYPE (see README).

Both read the same examples (hidden state at t, pending token x[t+1]) -> x[t+2 : t+2+k] and get the
same time budget, so the benchmark compares methods, not training effort.
"""
import argparse, hashlib, json, os, time

import numpy as np
import torch
import torch.nn.functional as F

from training.model import CTCDraftHead, MedusaHeads, HeadConfig, PrefixDraftHead, PrefixHeadConfig
from training.common import setup_device, autocast, lr_at, save_atomic, Clock
from training.distill import load_base
from training.progress import bar as progress_bar, summary as summary_line


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

    def batch(self, n_seq, rng, with_index=False):
        seqs, lp = self.groups[rng.integers(len(self.groups))]
        idx = torch.from_numpy(rng.integers(0, len(seqs), size=min(n_seq, len(seqs))))
        return (seqs[idx], lp, idx) if with_index else (seqs[idx], lp)


def make_examples(base, seqs, lp, k, device, per_seq, rng):
    """Base hidden states for full sequences, then sample positions t in the generated part.
    Returns hidden [N,d], pending [N], targets [N,k]."""
    seqs = seqs.to(device)
    with torch.no_grad(), autocast(device):
        hidden = base.hidden(seqs)
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
    return sequence_loss(head(h, emb[pending], emb), kind, targets, vocab)


class HiddenCache:
    """The frozen base model's hidden states of every distilled sequence, computed once (fp16):
    head v2 reads whole sequences each step, and the base forward would otherwise be most of a
    CPU step. With `directory` the states are also written there (one .npy per prompt length, named
    after the base checkpoint's hash) and memory-mapped by later runs, so two heads trained side by
    side, or a resumed run, skip the base forward (about 15 CPU-minutes for data/distill-v4)."""

    def __init__(self, base, examples, device, batch=32, directory=None, base_path=""):
        self.rows = {}
        tag = hashlib.sha256(open(base_path, "rb").read()).hexdigest()[:12] if directory and base_path else None
        todo = []
        for seqs, lp in examples.groups:
            path = os.path.join(directory, f"hidden-{tag}-p{lp}.npy") if tag else None
            if path and os.path.exists(path):
                arr = np.load(path, mmap_mode="r")
                assert arr.shape[:2] == tuple(seqs.shape), f"{path} does not match the distilled sequences"
                self.rows[lp] = arr
            else:
                todo.append((seqs, lp, path))
        if todo:
            with progress_bar(total=sum(len(seqs) for seqs, _, _ in todo), desc="base hidden states", unit="seq") as bar:
                for seqs, lp, path in todo:
                    out = []
                    for i in range(0, len(seqs), batch):
                        with torch.no_grad(), autocast(device):
                            out.append(base.hidden(seqs[i:i + batch].to(device)).half().cpu())
                        bar.update(min(batch, len(seqs) - i))
                    self.rows[lp] = torch.cat(out).numpy()
                    if path:
                        tmp = path + ".tmp.npy"
                        np.save(tmp, self.rows[lp])
                        os.replace(tmp, path)

    def get(self, lp, idx):
        return torch.from_numpy(np.ascontiguousarray(self.rows[lp][idx.numpy()]))


def prefix_examples(base, seqs, lp, k, device, per_seq, rng, noise=0.0, hidden=None):
    """For head v2: base hidden states of whole sequences (from `hidden` when cached) and sampled
    positions in the generated part. Returns hidden [B,T-1,d], next tokens [B,T-1] (token t+1 for
    position t), the sampled (b, t) index pairs [N] and targets [N,k] = x[t+2 : t+2+k]."""
    seqs = seqs.to(device)
    if hidden is None:
        with torch.no_grad(), autocast(device):
            hidden = base.hidden(seqs)
    hidden = hidden.to(device).float()[:, :-1]
    if noise > 0:
        hidden = hidden + noise * hidden.std() * torch.randn_like(hidden)
    B, T = seqs.shape
    lo, hi = lp - 1, T - k - 2
    t = torch.from_numpy(rng.integers(lo, hi + 1, size=(B, per_seq))).to(device).reshape(-1)
    b = torch.arange(B, device=device).repeat_interleave(per_seq)
    targets = seqs[b.unsqueeze(-1), (t + 2).unsqueeze(-1) + torch.arange(k, device=device)]
    return hidden, seqs[:, 1:], b, t, targets


def prefix_loss(head, hidden, nxt, b, t, targets, emb, vocab, aux_ce=0.0, slot_ce=0.0):
    """Head v2 loss on targets in token ids. The read-out's classes are the shortlist: a target
    outside it ends the CTC target there (the head learns to emit blanks where it cannot draft;
    prompt lookup covers those tokens) and is ignored by the Medusa CE. aux_ce adds a CE of the
    trunk's own next-token prediction (u_t through the full LM head vs x[t+2]). slot_ce (ctc2)
    adds a per-slot CE towards one valid alignment, each token held for slots/k slots and blanks
    after the last draftable one ("a a b b c c" collapses to "a b c"): a guide while CTC finds its own."""
    u = head.trunk(hidden, emb[nxt])[b, t]                      # [N,d]
    out = head.readout(u, emb)
    cls = shortlist_classes(head, targets)
    loss = sequence_loss(out, head.cfg.kind.rstrip("2"), cls, out.shape[-1] - (head.cfg.kind == "ctc2"))
    if aux_ce > 0:
        loss = loss + aux_ce * F.cross_entropy((u @ emb.t()).float(), targets[:, 0])
    if slot_ce > 0 and head.cfg.kind == "ctc2":
        N, slots, C = out.shape
        k = targets.shape[1]
        j = torch.arange(slots, device=out.device) * k // slots             # the token slot j holds
        outside = cls < 0
        length = torch.where(outside.any(1), outside.float().argmax(1), torch.full((N,), k, device=out.device))
        tgt = torch.where(j[None] < length[:, None], cls.clamp(min=0)[:, j], torch.full_like(cls[:, j], C - 1))
        loss = loss + slot_ce * F.nll_loss(out.float().reshape(-1, C), tgt.reshape(-1))
    return out, loss


def shortlist_classes(head, targets):
    """Token ids [N,k] -> read-out classes, -1 where the token is not in the shortlist."""
    inv = torch.full((head.cfg.vocab_size,), -1, dtype=torch.long, device=targets.device)
    inv[head.shortlist_ids] = torch.arange(len(head.shortlist_ids), device=targets.device)
    return inv[targets]


def sequence_loss(out, kind, targets, vocab):
    """targets [N,k] in read-out classes (-1: outside the shortlist); vocab = classes besides blank."""
    k = targets.shape[1]
    if kind == "ctc":
        N, slots, _ = out.shape
        outside = targets < 0
        lengths = torch.where(outside.any(1), outside.float().argmax(1), torch.full((N,), k, device=targets.device))
        return F.ctc_loss(out.float().transpose(0, 1), targets.clamp(min=0), torch.full((N,), slots, dtype=torch.long),
                          lengths.long(), blank=vocab, reduction="mean", zero_infinity=True)
    w = 0.8 ** torch.arange(k, device=out.device, dtype=torch.float32)
    ce = F.cross_entropy(out.float().reshape(-1, vocab), targets.reshape(-1), ignore_index=-1,
                         reduction="none").view(-1, k)
    valid = (targets >= 0).float()
    return ((ce * valid).sum(0) / valid.sum(0).clamp(min=1) * w).sum() / w.sum()


def greedy_shortlist_frequency(data_dir, vocab, size):
    """The `size` tokens the frozen base model emits most often in its greedy continuations (the
    generated part of every distilled sequence), most frequent first."""
    z = np.load(os.path.join(data_dir, "train.npz"))
    counts = np.zeros(vocab, np.int64)
    for name in z.files:
        counts += np.bincount(z[name][:, int(name[1:]):].ravel(), minlength=vocab)
    order = np.argsort(-counts, kind="stable")[:size]
    return torch.from_numpy(order.astype(np.int64)), float(counts[order].sum() / counts.sum())


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
    chain, no tree), the fraction of examples whose chain gets at least i+1 right (per slot), and
    the held-out loss."""
    head.eval()
    rng = np.random.default_rng(7)
    acc, n, loss = 0, 0, 0.0
    at_least = np.zeros(k)
    for _ in range(batches):
        seqs, lp = val.batch(64, rng)
        if kind.endswith("2"):
            hidden, nxt, b, t, targets = prefix_examples(base, seqs, lp, k, device, 16, rng)
            with autocast(device):
                out, l = prefix_loss(head, hidden, nxt, b, t, targets, emb, vocab)
            loss += l.item()
            ids = torch.cat([head.shortlist_ids, torch.tensor([vocab], device=head.shortlist_ids.device)])
            out = out.float()
            blank_cls = out.shape[-1] - 1
            chains = greedy_chain(out, kind.rstrip("2"), blank_cls if kind == "ctc2" else out.shape[-1])
            chains = [[int(ids[c]) for c in ch] for ch in chains]
        else:
            h, pending, targets = make_examples(base, seqs, lp, k, device, 16, rng)
            with autocast(device):
                loss += head_loss(head, kind, h, pending, targets, emb, vocab).item()
                out = head(h, emb[pending], emb)
            chains = None
        tg = targets.cpu().numpy()
        for chain, t in zip(chains or greedy_chain(out.float(), kind.rstrip("2"), vocab), tg):
            m = 0
            while m < min(len(chain), k) and chain[m] == t[m]:
                m += 1
            acc += m
            at_least[:m] += 1
            n += 1
    head.train()
    return acc / n, loss / batches, [round(float(x), 4) for x in at_least / n]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["ctc", "medusa", "ctc2", "medusa2"], required=True)
    ap.add_argument("--base", default="checkpoints/base/ckpt.pt")
    ap.add_argument("--data", default="data/distill")
    ap.add_argument("--out", default=None)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--k", type=int, default=None, help="draft tokens (default 8; head v2: 6)")
    ap.add_argument("--slots", type=int, default=None, help="CTC slots (default 2k)")
    ap.add_argument("--shortlist", type=int, default=1024, help="head v2: read out only the N tokens the base emits most (0: all)")
    ap.add_argument("--aux-ce", type=float, default=0.0, help="head v2: weight of the trunk's next-token CE")
    ap.add_argument("--slot-ce", type=float, default=0.0, help="ctc2: weight of a per-slot CE towards the 'each token k/slots times' alignment")
    ap.add_argument("--slot-layers", type=int, default=None,
                    help="ctc2: 1 (default) mixes the slots with one small layer, 0 drops it (a cheaper round); "
                         "with --init the other weights are kept")
    ap.add_argument("--noise", type=float, default=0.0, help="head v2: Gaussian noise on the base hidden states (x their std)")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--cache-hidden", type=int, default=1,
                    help="head v2: compute the base hidden states once (fp16): 1 in memory, 2 also on disk next to "
                         "the data (reused by later runs), 0 every step")
    ap.add_argument("--use-token", type=int, default=1)
    ap.add_argument("--seqs-per-step", type=int, default=16)
    ap.add_argument("--positions-per-seq", type=int, default=None, help="default 16; head v2: 64 (the trunk runs over whole sequences)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default=None, help="start from these head weights (fresh optimizer)")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the --init head on the held-out split and exit")
    ap.add_argument("--eval-shortlist", type=int, default=0,
                    help="with --eval-only: read out only the first N shortlist classes (export_onnx.py --v2-shortlist)")
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
    prefix = args.kind.endswith("2")
    k = args.k or (6 if prefix else 8)
    slots = args.slots or 2 * k
    Cfg = PrefixHeadConfig if prefix else HeadConfig
    cfg = (PrefixHeadConfig(kind=args.kind, d_model=d, vocab_size=vocab, k=k, slots=slots, shortlist_size=args.shortlist,
                            max_seq_len=base.cfg.max_seq_len, rope_theta=base.cfg.rope_theta) if prefix else
           HeadConfig(kind=args.kind, d_model=d, vocab_size=vocab, k=k, slots=slots, use_token=bool(args.use_token)))
    state = torch.load(ckpt_path, map_location="cpu") if args.resume and os.path.exists(ckpt_path) else None
    if state or args.init:
        cfg = Cfg(**(state or torch.load(args.init, map_location="cpu"))["config"])
    if prefix and not state and args.init:  # --init with another read-out: the flags given win
        if args.slot_layers is not None:
            cfg.slot_layers = args.slot_layers
        if args.k:
            cfg.k, cfg.slots = args.k, args.slots or 2 * args.k
    head = (PrefixDraftHead if prefix else CTCDraftHead if cfg.kind == "ctc" else MedusaHeads)(cfg).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
    if prefix and cfg.shortlist_size and not (state or args.init):
        ids, coverage = greedy_shortlist_frequency(args.data, vocab, cfg.shortlist_size)
        head.shortlist_ids.copy_(ids.to(device))
        print(f"shortlist: {cfg.shortlist_size} tokens, {coverage:.1%} of the base model's greedy output", flush=True)
    per_seq = args.positions_per_seq or (64 if prefix else 16)
    step, clock = 0, Clock()
    if state:
        head.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, clock = state["step"], Clock(state["elapsed"])
    elif args.init:
        init = torch.load(args.init, map_location="cpu")
        weights, changed = init["model"], False
        if prefix:
            # a dropped slot layer leaves its tensors out; fewer slots or read-outs keep the first ones
            # (slot j of 2k holds draft token j // 2 under the per-slot CE's alignment, so they still fit)
            own = head.state_dict()
            changed = init["config"].get("slot_layers", 1) != cfg.slot_layers
            for name, w in list(weights.items()):
                if name in own and own[name].shape != w.shape:
                    n = own[name].shape[0]
                    assert own[name].shape[1:] == w.shape[1:] and n < w.shape[0], f"{name}: {tuple(w.shape)} -> {tuple(own[name].shape)}"
                    weights[name] = w[:n].clone()
                    changed = True
            if cfg.kind == "medusa2":
                weights = {k: v for k, v in weights.items() if not k.startswith("heads.") or int(k.split(".")[1]) < cfg.k}
        missing, unexpected = head.load_state_dict(weights, strict=not changed)
        note = f", left out {len(unexpected)} tensors, {len(missing)} new" if changed else ""
        print(f"initialised from {args.init} ({init.get('step', 0)} steps{note})", flush=True)
    if args.eval_only:
        if args.eval_shortlist:
            head.shortlist_ids = head.shortlist_ids[:args.eval_shortlist]
        val = Examples(os.path.join(args.data, "val.npz"), cfg.k)
        acc, val_loss, per_slot = evaluate(head, cfg.kind, base, val, cfg.k, device, emb, vocab)
        print(json.dumps({"head": args.init, "kind": cfg.kind, "k": cfg.k, "shortlist": len(head.shortlist_ids) if prefix else None, "val_loss": val_loss,
                          "top1_chain_accepted": acc, "chain_at_least": per_slot}), flush=True)
        return
    train = Examples(os.path.join(args.data, "train.npz"), cfg.k)
    rng = np.random.default_rng(step)
    cache = (HiddenCache(base, train, device, directory=args.data if args.cache_hidden == 2 else None, base_path=args.base)
             if prefix and args.cache_hidden else None)
    clock = Clock(clock.previous)  # the budget is for training steps, not for filling the cache
    print(f"{cfg.kind} head: {sum(p.numel() for p in head.parameters()) / 1e6:.2f}M params, "
          f"k={cfg.k}, device {device}", flush=True)

    def checkpoint():
        save_atomic({"config": cfg.to_dict(), "model": head.state_dict(), "optimizer": opt.state_dict(),
                     "step": step, "elapsed": clock.elapsed()}, ckpt_path)

    bar = progress_bar(total=round(args.minutes * 60), initial=round(clock.elapsed()), unit="s", desc=f"{cfg.kind} head")
    ckpt_t = time.time()
    while True:
        # --minutes 0: no steps (fill the --cache-hidden 2 files, evaluate)
        progress = clock.elapsed() / (args.minutes * 60) if args.minutes > 0 else 1.0
        if args.max_steps:
            progress = max(progress, step / args.max_steps)
        if progress >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(progress, args.lr, warmup=0.05)
        seqs, lp, idx = train.batch(args.seqs_per_step, rng, with_index=True)
        if prefix:
            hidden, nxt, b, t, targets = prefix_examples(base, seqs, lp, cfg.k, device, per_seq,
                                                         rng, args.noise, cache.get(lp, idx) if cache else None)
            with autocast(device):
                _, loss = prefix_loss(head, hidden, nxt, b, t, targets, emb, vocab, args.aux_ce, args.slot_ce)
        else:
            h, pending, targets = make_examples(base, seqs, lp, cfg.k, device, per_seq, rng)
            with autocast(device):
                loss = head_loss(head, cfg.kind, h, pending, targets, emb, vocab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        step += 1
        bar.n = min(bar.total, round(clock.elapsed()))
        bar.set_postfix(step=step, loss=f"{loss.item():.3f}", refresh=False)
        bar.update(0)
        if time.time() - ckpt_t > args.checkpoint_minutes * 60:
            checkpoint()
            ckpt_t = time.time()
    bar.close()
    val = Examples(os.path.join(args.data, "val.npz"), cfg.k)  # read at the end: distill may still be writing it
    acc, val_loss, per_slot = evaluate(head, cfg.kind, base, val, cfg.k, device, emb, vocab)
    summary = {"kind": cfg.kind, "k": cfg.k, "use_token": getattr(cfg, "use_token", True), "steps": step, "minutes": clock.elapsed() / 60,
               "val_loss": val_loss, "top1_chain_accepted": acc, "chain_at_least": per_slot}
    if getattr(cfg, "shortlist_size", 0):
        summary["shortlist"] = cfg.shortlist_size
    if cfg.kind == "ctc2":
        summary["slot_layers"] = cfg.slot_layers
    save_atomic({"config": cfg.to_dict(), "model": head.state_dict(), "optimizer": opt.state_dict(),
                 "step": step, "elapsed": clock.elapsed(), "summary": summary}, ckpt_path)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary), flush=True)
    summary_line(f"{cfg.kind} head: {step} steps in {clock.elapsed() / 60:.1f} min, val loss {val_loss:.4f}, "
                 f"held-out accepted length {acc:.2f} tokens (top-1 chain) -> {ckpt_path}")


if __name__ == "__main__":
    main()
