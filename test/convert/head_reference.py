"""PyTorch reference for test/convert/head-export.test.ts: a random draft head (PrefixDraftHead) on a small
random base model, exported by training/export_onnx.py's build_prefix_head (fp32), with the head's
output at the newest position computed in PyTorch for the same inputs.

  /usr/bin/python3 test/convert/head_reference.py <out_dir> --kind ctc --slot-layers 0 --seed 3

writes <out_dir>/head.onnx, hidden.f32 ([m,d]), out.f32 (ctc: log-probs [slots,V'+1]; medusa: logits
[k,V']), keys.f32 (the trunk's rotated keys [H,m,Dh]) and meta.json (d, heads, m, next_ids, shapes)."""
import argparse, json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
import numpy as np
import torch

from training.model import BaseModel, ModelConfig, PrefixDraftHead, PrefixHeadConfig, rope_cos_sin, apply_rope
from training.export_onnx import build_prefix_head
from training.onnx_graph import save

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--kind", choices=["ctc", "medusa"], default="ctc")
ap.add_argument("--slot-layers", type=int, default=1)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--m", type=int, default=37)
args = ap.parse_args()
torch.manual_seed(args.seed)
V, d = 512, 64
base = BaseModel(ModelConfig(vocab_size=V, d_model=d, n_layers=1, n_heads=2, ffn_hidden=96, max_seq_len=128)).eval()
cfg = PrefixHeadConfig(kind=args.kind, d_model=d, vocab_size=V, k=4, slots=8, n_heads=2, ffn_hidden=96, slot_dim=32,
                       slot_ffn=48, slot_layers=args.slot_layers, shortlist_size=200, max_seq_len=128)
head = PrefixDraftHead(cfg).eval()
with torch.no_grad():
    for name, p in head.named_parameters():  # random everywhere (the Medusa read-outs start at zero)
        p.add_(torch.randn_like(p) * 0.1) if "norm" in name else p.copy_(torch.randn_like(p) * 0.2)
    head.shortlist_ids.copy_(torch.randperm(V)[:200])
os.makedirs(args.out, exist_ok=True)
save(build_prefix_head(base, head), os.path.join(args.out, "head.onnx"))
m = args.m
hidden = torch.randn(1, m, d)
nxt = torch.randint(0, V, (1, m))
with torch.no_grad():
    emb = base.embed.weight
    u = head.trunk(hidden, emb[nxt])[:, -1]                              # [1,d]
    out = head.readout(u, emb)[0]                                         # [slots,V'+1] or [k,V']
    x = head.fuse(torch.cat([emb[nxt], hidden], -1))
    q, k, v = head.block.attn.wqkv(head.block.attn_norm(x)).split(d, dim=-1)
    H, D = cfg.n_heads, d // cfg.n_heads
    cos, sin = rope_cos_sin(torch.arange(m).unsqueeze(0), D, cfg.rope_theta)
    keys = apply_rope(k.view(1, m, H, D).transpose(1, 2), cos, sin)[0]   # [H,m,D]
hidden[0].numpy().astype("<f4").tofile(os.path.join(args.out, "hidden.f32"))
out.numpy().astype("<f4").tofile(os.path.join(args.out, "out.f32"))
keys.numpy().astype("<f4").tofile(os.path.join(args.out, "keys.f32"))
json.dump({"d": d, "heads": H, "head_dim": D, "m": m, "next_ids": nxt[0].tolist(), "out_shape": list(out.shape),
           "output": "log_probs" if args.kind == "ctc" else "logits"}, open(os.path.join(args.out, "meta.json"), "w"))
