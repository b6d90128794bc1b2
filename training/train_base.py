"""Train the base language model (Llama-style, ~4.7M non-embedding parameters) on the token
files from train_tokenizer.py. Time-budgeted (cosine LR over the budget), checkpointed every few
minutes and resumable: rerun the same command with --resume to continue where it stopped.

  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 -m training.train_base --minutes 120
"""
import argparse, json, math, os, time

import numpy as np
import torch
import torch.nn.functional as F

from training.model import BaseModel, ModelConfig
from training.common import setup_device, autocast, load_tokens, random_windows, lr_at, save_atomic, Clock
from training.progress import bar, summary as summary_line


@torch.no_grad()
def evaluate(model, val, device, seq, batches=20, batch=16, seed=1234):
    """Held-out loss in nats/token on fixed random windows (same windows every call)."""
    model.eval()
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(batches):
        x = random_windows(val, batch, seq + 1, rng).to(device)
        with autocast(device):
            logits, _ = model(x[:, :-1])
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item()
    model.train()
    return total / batches


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/tokens")
    ap.add_argument("--out", default="checkpoints/base")
    ap.add_argument("--minutes", type=float, default=120.0, help="wall-clock budget (LR schedule follows it)")
    ap.add_argument("--max-tokens", type=float, default=0, help="optional token budget; whichever ends first")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--eval-minutes", type=float, default=5.0)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=688)
    args = ap.parse_args()

    device = setup_device(args.device, args.threads or None)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    train, val = load_tokens(os.path.join(args.data, "train.bin")), load_tokens(os.path.join(args.data, "val.bin"))

    cfg = ModelConfig(d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                      ffn_hidden=args.ffn, max_seq_len=args.seq)
    state = None
    if args.resume and os.path.exists(ckpt_path):
        state = torch.load(ckpt_path, map_location="cpu")
        cfg = ModelConfig(**state["config"])
    model = BaseModel(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    step, tokens_seen, best = 0, 0, float("inf")
    clock = Clock()
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, tokens_seen, best = state["step"], state["tokens"], state.get("best_val", best)
        clock = Clock(state["elapsed"])
        print(f"resumed at step {step}, {tokens_seen / 1e6:.1f}M tokens, {clock.elapsed() / 60:.1f} min", flush=True)
    print(f"non-embedding params: {model.non_embedding_params() / 1e6:.2f}M, device {device}", flush=True)

    rng = np.random.default_rng(step + 1)
    budget_s = args.minutes * 60
    last_ckpt = last_eval = time.time()
    log_t, log_tokens = time.time(), tokens_seen
    # the budget is time or tokens, whichever ends first: the bar counts percent of it
    done = lambda: 100 * max(clock.elapsed() / budget_s, tokens_seen / args.max_tokens if args.max_tokens else 0)
    meter = bar(total=100.0, initial=min(100.0, done()), unit="%", desc="base model",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")

    def save(final=False):
        val_loss = evaluate(model, val, device, args.seq)
        nonlocal best
        best = min(best, val_loss)
        save_atomic({"config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "step": step, "tokens": tokens_seen, "elapsed": clock.elapsed(), "val_loss": val_loss,
                     "best_val": best}, ckpt_path)
        meter.write(f"{'final' if final else 'checkpoint'}: step {step}, val {val_loss:.4f} nats/token, "
                    f"{tokens_seen / 1e6:.1f}M tokens, {clock.elapsed() / 60:.1f} min")
        return val_loss

    while True:
        progress = clock.elapsed() / budget_s
        if args.max_tokens:
            progress = max(progress, tokens_seen / args.max_tokens)
        if progress >= 1.0:
            break
        lr = lr_at(progress, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        x = random_windows(train, args.batch, args.seq + 1, rng).to(device, non_blocking=True)
        with autocast(device):
            logits, _ = model(x[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += args.batch * args.seq
        now = time.time()
        if now - log_t > 5:
            meter.set_postfix_str(f"step {step}, loss {loss.item():.3f}, lr {lr:.1e}, "
                                  f"{(tokens_seen - log_tokens) / (now - log_t):.0f} tok/s", refresh=False)
            log_t, log_tokens = now, tokens_seen
        meter.update(min(100.0, done()) - meter.n)
        if now - last_ckpt > args.checkpoint_minutes * 60:
            save()
            last_ckpt = last_eval = time.time()
    meter.update(100 - meter.n)
    meter.close()
    val_loss = save(final=True)
    val_bytes = os.path.getsize(os.path.join(os.path.dirname(args.data.rstrip('/')), "corpus", "val.txt")) \
        if os.path.exists(os.path.join(os.path.dirname(args.data.rstrip('/')), "corpus", "val.txt")) else None
    summary = {"val_loss_nats": val_loss, "tokens": tokens_seen, "steps": step, "minutes": clock.elapsed() / 60,
               "non_embedding_params": model.non_embedding_params()}
    if val_bytes:
        bytes_per_token = val_bytes / len(val)
        summary["bits_per_byte"] = val_loss / math.log(2) / bytes_per_token
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary), flush=True)
    summary_line(f"base model: {step} steps, {tokens_seen / 1e6:.1f}M tokens in {clock.elapsed() / 60:.1f} min, "
                 f"val {val_loss:.4f} nats/token -> {ckpt_path}")


if __name__ == "__main__":
    main()
