"""Train a draft head on the frozen base model's own continuations (from distill.py: greedy, sampled,
or both side by side with --data a,b).

The head (PrefixDraftHead) runs one causal layer over every prefix position (input
fuse([embedding of token t+1; hidden at t])) and reads out the next k tokens after the pending one:
  --kind ctc     the paper's CTC draft head: `slots` outputs over the shortlist + blank, CTC loss
                 against the next k tokens (the alignment is learned, not fixed)
  --kind medusa  Medusa-style read-outs: read-out i predicts token i+1 after the pending one (CE loss)
Both read the same examples and get the same time budget, so the benchmark compares methods, not
training effort. --soft-ce adds soft targets towards the base model's distributions (what sampled
drafts are accepted against).

Time-budgeted (--minutes), checkpointed every --checkpoint-minutes to <out>/ckpt.pt, resumable with
--resume (same command), with a progress bar. On CPU set OPENBLAS_CORETYPE (see README).
"""
import argparse, hashlib, json, os, time

import numpy as np
import torch
import torch.nn.functional as F

from training.model import PrefixDraftHead, PrefixHeadConfig
from training.common import setup_device, autocast, lr_at, save_atomic, Clock
from training.distill import load_base
from training.progress import bar as progress_bar, summary as summary_line


class Examples:
    """Groups of distilled sequences (one per prompt length and data set); yields (tokens [B,T],
    first valid t) batches. `paths`: one .npz or several (greedy and sampled continuations side by
    side); a batch is drawn from one group, each group as likely as the others."""

    def __init__(self, paths, k):
        self.groups = []   # (tokens [N,T], prompt length, the data set's folder)
        for path in [paths] if isinstance(paths, str) else paths:
            z = np.load(path)
            for name in z.files:
                self.groups.append((torch.from_numpy(z[name].astype(np.int64)), int(name[1:]), os.path.dirname(path)))
        self.k = k

    def batch(self, n_seq, rng, with_index=False):
        g = int(rng.integers(len(self.groups)))
        seqs, lp, _ = self.groups[g]
        idx = torch.from_numpy(rng.integers(0, len(seqs), size=min(n_seq, len(seqs))))
        return (seqs[idx], lp, (g, idx)) if with_index else (seqs[idx], lp)


class HiddenCache:
    """The frozen base model's hidden states of every distilled sequence, computed once (fp16):
    the head reads whole sequences each step, and the base forward would otherwise be most of a
    CPU step. With `on_disk` the states are also written next to each data set (one .npy per prompt length, named
    after the base checkpoint's hash) and memory-mapped by later runs, so two heads trained side by
    side, or a resumed run, skip the base forward (about 15 CPU-minutes for data/distill-v4)."""

    def __init__(self, base, examples, device, batch=32, on_disk=False, base_path=""):
        self.rows = {}
        tag = hashlib.sha256(open(base_path, "rb").read()).hexdigest()[:12] if on_disk and base_path else None
        todo = []
        for g, (seqs, lp, folder) in enumerate(examples.groups):
            path = os.path.join(folder, f"hidden-{tag}-p{lp}.npy") if tag else None
            if path and os.path.exists(path):
                arr = np.load(path, mmap_mode="r")
                assert arr.shape[:2] == tuple(seqs.shape), f"{path} does not match the distilled sequences"
                self.rows[g] = arr
            else:
                todo.append((seqs, g, path))
        if todo:
            with progress_bar(total=sum(len(seqs) for seqs, _, _ in todo), desc="base hidden states", unit="seq") as bar:
                for seqs, lp, path in todo:  # lp: the group's index here
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

    def get(self, group, idx):
        return torch.from_numpy(np.ascontiguousarray(self.rows[group][idx.numpy()]))


def prefix_examples(base, seqs, lp, k, device, per_seq, rng, noise=0.0, hidden=None):
    """Base hidden states of whole sequences (from `hidden` when cached) and sampled
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


def base_soft_targets(head, hidden, b, t, k, emb):
    """The frozen base model's next-token distributions over the head's shortlist at positions
    t+1 .. t+k of each example: [N,k,V'], row j the distribution of draft token j (x[t+2+j]) given
    the sequence before it (softmax of the shortlist's logits = the base distribution restricted to
    the shortlist, renormalised: the best a read-out over the shortlist can match). Along sampled
    continuations the rows for j >= 1 average to the marginal a non-autoregressive slot can learn."""
    w = emb[head.shortlist_ids]
    rows = hidden[b.unsqueeze(-1), (t + 1).unsqueeze(-1) + torch.arange(k, device=t.device)]   # [N,k,d]
    with torch.no_grad():
        return torch.softmax(rows.float() @ w.t().float(), -1)


def soft_ce(head, out, soft):
    """Cross-entropy of the read-out against the base distributions soft [N,k,V']: medusa read-out j
    against row j; ctc slot s against the row of the token it holds under the per-slot alignment
    (s * k // slots), blank getting no mass. Deeper positions weigh 0.8^j as in the hard CE."""
    k = soft.shape[1]
    if head.cfg.kind == "ctc":
        slots = out.shape[1]
        j = torch.arange(slots, device=out.device) * k // slots
        logq = out.float()[..., :-1]                        # [N,slots,V'] log-probs without blank
        ce = -(soft[:, j] * logq).sum(-1).mean(0)          # [slots]
        w = 0.8 ** j.float()
    else:
        ce = -(soft * out.float().log_softmax(-1)).sum(-1).mean(0)  # [k]
        w = 0.8 ** torch.arange(k, device=out.device, dtype=torch.float32)
    return (ce * w).sum() / w.sum()


def prefix_loss(head, hidden, nxt, b, t, targets, emb, vocab, aux_ce=0.0, slot_ce=0.0, soft_weight=0.0):
    """The head's loss on targets in token ids. The read-out's classes are the shortlist: a target
    outside it ends the CTC target there (the head learns to emit blanks where it cannot draft;
    prompt lookup covers those tokens) and is ignored by the Medusa CE. aux_ce adds a CE of the
    trunk's own next-token prediction (u_t through the full LM head vs x[t+2]). slot_ce (ctc)
    adds a per-slot CE towards one valid alignment, each token held for slots/k slots and blanks
    after the last draftable one ("a a b b c c" collapses to "a b c"): a guide while CTC finds its own.
    soft_weight adds soft_ce towards the base model's own distributions (what a sampled draft is
    accepted against: 1 - TV(p, q)), as the CTC drafter paper's released code weighs a soft CE 0.1."""
    u = head.trunk(hidden, emb[nxt])[b, t]                      # [N,d]
    out = head.readout(u, emb)
    cls = shortlist_classes(head, targets)
    loss = sequence_loss(out, head.cfg.kind, cls, out.shape[-1] - (head.cfg.kind == "ctc"))
    if aux_ce > 0:
        loss = loss + aux_ce * F.cross_entropy((u @ emb.t()).float(), targets[:, 0])
    if slot_ce > 0 and head.cfg.kind == "ctc":
        N, slots, C = out.shape
        k = targets.shape[1]
        j = torch.arange(slots, device=out.device) * k // slots             # the token slot j holds
        outside = cls < 0
        length = torch.where(outside.any(1), outside.float().argmax(1), torch.full((N,), k, device=out.device))
        tgt = torch.where(j[None] < length[:, None], cls.clamp(min=0)[:, j], torch.full_like(cls[:, j], C - 1))
        loss = loss + slot_ce * F.nll_loss(out.float().reshape(-1, C), tgt.reshape(-1))
    if soft_weight > 0:
        loss = loss + soft_weight * soft_ce(head, out, base_soft_targets(head, hidden, b, t, targets.shape[1], emb))
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


def ctc_prefix_conditionals(log_probs, prefix):
    """The CTC head's distribution of each next draft token given the draft tokens before it, as the
    engine's sampling drafter computes it: log_probs [N,S,C] (blank = C-1), prefix [N,k] classes
    (-1: outside the read-out) -> q [N,k,C-1], row d = q(x | prefix[:d]) over the output sequences'
    alignments: sum over slots s of P_s(x) * (P(prefix[:d] emitted by s-1, ending in blank) +
    P(.. ending in its last token) if x differs from it), normalised over x. Rows after a -1 are 0."""
    P = log_probs.float().exp()
    N, S, C = P.shape
    blank = C - 1
    k = prefix.shape[1]
    pb = torch.zeros(N, S + 1, device=P.device)             # index s+1: after slot s; index 0: before any
    pnb = torch.zeros(N, S + 1, device=P.device)
    pb[:, 0] = 1
    for s in range(S):
        pb[:, s + 1] = pb[:, s] * P[:, s, blank]
    last = torch.full((N,), -1, dtype=torch.long, device=P.device)
    alive = torch.ones(N, dtype=torch.bool, device=P.device)
    q = torch.zeros(N, k, C - 1, device=P.device)
    rows = torch.arange(N, device=P.device)
    for d in range(k):
        A, B = pb[:, :S], pnb[:, :S]
        psi = torch.einsum("ns,nsc->nc", A + B, P[..., :blank])
        same = last >= 0
        if same.any():
            l = last.clamp(min=0)
            psi[rows, l] -= torch.where(same, (P[rows, :, l] * B).sum(1), torch.zeros_like(psi[:, 0]))
        psi = psi.clamp(min=0)
        q[:, d] = torch.where(alive[:, None], psi / psi.sum(1, keepdim=True).clamp(min=1e-30), torch.zeros_like(psi))
        c = prefix[:, d]
        alive = alive & (c >= 0)
        cc = c.clamp(min=0)
        Pc = P[rows, :, cc]                                   # [N,S]
        nb, bl = torch.zeros_like(pnb), torch.zeros_like(pb)
        for s in range(S):
            carry = A[:, s] + torch.where(cc != last, B[:, s], torch.zeros_like(B[:, s]))
            nb[:, s + 1] = Pc[:, s] * (carry + nb[:, s])
            bl[:, s + 1] = P[:, s, blank] * (bl[:, s] + nb[:, s])
        pb, pnb, last = bl, nb, cc
    return q


Q_TEMPERATURES = (0.7, 0.85, 1.15, 1.3, 1.5)


def expected_acceptance(head, out, hidden, b, t, targets, emb):
    """Per draft position d, the mean probability that a draft sampled from the head's q is accepted
    against the base distribution p at temperature 1, given the tokens before it: sum_x min(p, q)
    (= 1 - TV(p, q)). p: full softmax of the base logits at t+1+d; q: medusa's softmax of read-out d,
    ctc's prefix conditional over the true prefix (ctc_prefix_conditionals). Also the
    deterministic drafts' acceptance sum p(argmax q). Returns ([k] sampled, [k] argmax, [k] counts)."""
    k = targets.shape[1]
    cls = shortlist_classes(head, targets)
    if head.cfg.kind == "ctc":
        q = ctc_prefix_conditionals(out, cls)
    else:
        q = out.float().softmax(-1)
    rows = hidden[b.unsqueeze(-1), (t + 1).unsqueeze(-1) + torch.arange(k, device=t.device)]   # [N,k,d]
    p = torch.softmax(rows.float() @ emb.t().float(), -1)[..., head.shortlist_ids]              # [N,k,V']
    valid = torch.ones_like(cls, dtype=torch.bool)
    if head.cfg.kind == "ctc":   # a prefix outside the read-out cannot be drafted past
        valid[:, 1:] = (cls[:, :-1] >= 0).cumprod(1).bool()
    sampled = (torch.minimum(p, q).sum(-1) * valid).sum(0)
    greedy = (p.gather(-1, q.argmax(-1, keepdim=True)).squeeze(-1) * valid).sum(0)
    # q tempered by s (q^(1/s), renormalised): which draft temperature the head's q is best sampled at
    tempered = {s: (torch.minimum(p, q_s / q_s.sum(-1, keepdim=True).clamp(min=1e-30)).sum(-1) * valid).sum(0).cpu().numpy()
                for s in Q_TEMPERATURES for q_s in [q.clamp(min=1e-30) ** (1 / s) * (q > 0)]}
    return sampled.cpu().numpy(), greedy.cpu().numpy(), valid.sum(0).cpu().numpy(), tempered


@torch.no_grad()
def evaluate(head, kind, base, val, k, device, emb, vocab, batches=8):
    """Mean number of leading draft tokens equal to the continuation (top-1 chain, no tree; on greedy
    continuations: the greedy chain accuracy), the fraction of examples whose chain gets at least i+1
    right (per slot), the held-out loss and the expected acceptance of sampled and of
    argmax drafts per draft position against the base distribution at T 1 (expected_acceptance)."""
    head.eval()
    rng = np.random.default_rng(7)
    acc, n, loss = 0, 0, 0.0
    at_least = np.zeros(k)
    accept_q, accept_top, accept_n = np.zeros(k), np.zeros(k), np.zeros(k)
    accept_temp = {}
    for _ in range(batches):
        seqs, lp = val.batch(64, rng)
        hidden, nxt, b, t, targets = prefix_examples(base, seqs, lp, k, device, 16, rng)
        with autocast(device):
            out, l = prefix_loss(head, hidden, nxt, b, t, targets, emb, vocab)
        loss += l.item()
        a_q, a_top, a_n, a_temp = expected_acceptance(head, out, hidden, b, t, targets, emb)
        for s_, v in a_temp.items():
            accept_temp[s_] = accept_temp.get(s_, 0) + v
        accept_q += a_q
        accept_top += a_top
        accept_n += a_n
        ids = torch.cat([head.shortlist_ids, torch.tensor([vocab], device=head.shortlist_ids.device)])
        out = out.float()
        blank_cls = out.shape[-1] - 1
        chains = greedy_chain(out, kind, blank_cls if kind == "ctc" else out.shape[-1])
        chains = [[int(ids[c]) for c in ch] for ch in chains]
        tg = targets.cpu().numpy()
        for chain, t in zip(chains, tg):
            m = 0
            while m < min(len(chain), k) and chain[m] == t[m]:
                m += 1
            acc += m
            at_least[:m] += 1
            n += 1
    head.train()
    r4 = lambda xs: [round(float(x), 4) for x in xs]
    accept = ({"sampled": r4(accept_q / np.maximum(accept_n, 1)), "argmax": r4(accept_top / np.maximum(accept_n, 1)),
               "sampled_q_tempered": {str(s_): r4(v / np.maximum(accept_n, 1)) for s_, v in accept_temp.items()}}
              if accept_n.any() else None)
    return acc / n, loss / batches, r4(at_least / n), accept


def evaluate_all(head, kind, base, data_dirs, k, device, emb, vocab):
    """evaluate() on each data set's held-out split, keyed by its folder's name."""
    out = {}
    for folder in data_dirs:
        acc, val_loss, per_slot, accept = evaluate(head, kind, base, Examples(os.path.join(folder, "val.npz"), k), k, device, emb, vocab)
        out[os.path.basename(folder.rstrip("/"))] = {"val_loss": val_loss, "top1_chain_accepted": acc, "chain_at_least": per_slot,
                                                     "expected_acceptance_t1": accept}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["ctc", "medusa"], required=True)
    ap.add_argument("--base", default="checkpoints/base/ckpt.pt")
    ap.add_argument("--data", default="data/distill",
                    help="distilled data folder, or several separated by commas (e.g. greedy and sampled continuations)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--k", type=int, default=None, help="draft tokens (default 6)")
    ap.add_argument("--slots", type=int, default=None, help="CTC slots (default 2k)")
    ap.add_argument("--shortlist", type=int, default=1024, help="read out only the N tokens the base emits most (0: all)")
    ap.add_argument("--aux-ce", type=float, default=0.0, help="weight of the trunk's next-token CE")
    ap.add_argument("--soft-ce", type=float, default=0.0,
                    help="weight of a per-slot soft cross-entropy towards the base model's distributions")
    ap.add_argument("--slot-ce", type=float, default=0.0, help="ctc: weight of a per-slot CE towards the 'each token k/slots times' alignment")
    ap.add_argument("--slot-layers", type=int, default=None,
                    help="ctc: 1 (default) mixes the slots with one small layer, 0 drops it (a cheaper round); "
                         "with --init the other weights are kept")
    ap.add_argument("--noise", type=float, default=0.0, help="Gaussian noise on the base hidden states (x their std)")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--cache-hidden", type=int, default=1,
                    help="compute the base hidden states once (fp16): 1 in memory, 2 also on disk next to "
                         "the data (reused by later runs), 0 every step")
    ap.add_argument("--seqs-per-step", type=int, default=16)
    ap.add_argument("--positions-per-seq", type=int, default=64, help="positions read out per sequence (the trunk runs over whole sequences)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default=None, help="start from these head weights (fresh optimizer)")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the --init head on the held-out split and exit")
    ap.add_argument("--eval-shortlist", type=int, default=0,
                    help="with --eval-only: read out only the first N shortlist classes (export_onnx.py --v2-shortlist)")
    args = ap.parse_args()
    data_dirs = args.data.split(",")
    device = setup_device(args.device, args.threads or None)
    out_dir = args.out or f"checkpoints/{args.kind}"
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, "ckpt.pt")

    base = load_base(args.base, device)
    for p in base.parameters():
        p.requires_grad_(False)
    emb = base.embed.weight.detach()
    vocab, d = emb.shape
    k = args.k or 6
    slots = args.slots or 2 * k
    cfg = PrefixHeadConfig(kind=args.kind, d_model=d, vocab_size=vocab, k=k, slots=slots, shortlist_size=args.shortlist,
                           max_seq_len=base.cfg.max_seq_len, rope_theta=base.cfg.rope_theta,
                           slot_layers=1 if args.slot_layers is None else args.slot_layers)
    state = torch.load(ckpt_path, map_location="cpu") if args.resume and os.path.exists(ckpt_path) else None
    if state or args.init:
        cfg = PrefixHeadConfig(**(state or torch.load(args.init, map_location="cpu"))["config"])
        assert cfg.kind == args.kind, f"--kind {args.kind}, but the checkpoint holds a {cfg.kind} head"
    if not state and args.init:  # --init with another read-out: the flags given win
        if args.slot_layers is not None:
            cfg.slot_layers = args.slot_layers
        if args.k:
            cfg.k, cfg.slots = args.k, args.slots or 2 * args.k
    head = PrefixDraftHead(cfg).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
    if cfg.shortlist_size and not (state or args.init):
        ids, coverage = greedy_shortlist_frequency(data_dirs[0], vocab, cfg.shortlist_size)
        head.shortlist_ids.copy_(ids.to(device))
        print(f"shortlist: {cfg.shortlist_size} tokens, {coverage:.1%} of the base model's greedy output", flush=True)
    per_seq = args.positions_per_seq
    step, clock = 0, Clock()
    if state:
        head.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, clock = state["step"], Clock(state["elapsed"])
    elif args.init:
        init = torch.load(args.init, map_location="cpu")
        weights, changed = init["model"], False
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
        if cfg.kind == "medusa":
            weights = {k: v for k, v in weights.items() if not k.startswith("heads.") or int(k.split(".")[1]) < cfg.k}
        missing, unexpected = head.load_state_dict(weights, strict=not changed)
        note = f", left out {len(unexpected)} tensors, {len(missing)} new" if changed else ""
        print(f"initialised from {args.init} ({init.get('step', 0)} steps{note})", flush=True)
    if args.eval_only:
        if args.eval_shortlist:
            head.shortlist_ids = head.shortlist_ids[:args.eval_shortlist]
        print(json.dumps({"head": args.init, "kind": cfg.kind, "k": cfg.k, "shortlist": len(head.shortlist_ids),
                          "eval": evaluate_all(head, cfg.kind, base, data_dirs, cfg.k, device, emb, vocab)}), flush=True)
        return
    train = Examples([os.path.join(d, "train.npz") for d in data_dirs], cfg.k)
    rng = np.random.default_rng(step)
    cache = (HiddenCache(base, train, device, on_disk=args.cache_hidden == 2, base_path=args.base)
             if args.cache_hidden else None)
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
        seqs, lp, idx = train.batch(args.seqs_per_step, rng, with_index=True)   # idx: (group, rows)
        hidden, nxt, b, t, targets = prefix_examples(base, seqs, lp, cfg.k, device, per_seq,
                                                     rng, args.noise, cache.get(*idx) if cache else None)
        with autocast(device):
            _, loss = prefix_loss(head, hidden, nxt, b, t, targets, emb, vocab, args.aux_ce, args.slot_ce, args.soft_ce)
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
    # read at the end: distill may still be writing it
    evals = evaluate_all(head, cfg.kind, base, data_dirs, cfg.k, device, emb, vocab)
    first = evals[os.path.basename(data_dirs[0].rstrip("/"))]
    val_loss, acc = first["val_loss"], first["top1_chain_accepted"]
    summary = {"kind": cfg.kind, "k": cfg.k, "steps": step, "minutes": clock.elapsed() / 60,
               "data": data_dirs, "soft_ce": args.soft_ce, "val_loss": val_loss, "top1_chain_accepted": acc,
               "chain_at_least": first["chain_at_least"], "eval": evals}
    if cfg.shortlist_size:
        summary["shortlist"] = cfg.shortlist_size
    if cfg.kind == "ctc":
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
