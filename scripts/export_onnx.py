#!/usr/bin/env python3
"""Export the base model and the draft heads to fp32 ONNX (opset 17), op by op.

Base model (batch 1; S new tokens, P past tokens, T = P+S):
  inputs  input_ids int64 [1,S], position_ids int64 [1,S], attention_mask f32 [1,1,S,T] (additive),
          past_key_i / past_value_i f32 [1,H,P,D] for each layer i
  outputs logits f32 [1,S,V], hidden f32 [1,S,d] (after the final norm),
          present_key_i / present_value_i f32 [1,H,T,D]
The mask makes a token tree verifiable in one pass: row j may see all P past positions plus its
ancestors and itself. One [d,V] table (`embed_t`) is both the embedding and the tied LM head.

Draft heads (N rows): inputs hidden f32 [N,d], token_ids int64 [N] (the pending token);
  CTC:    output log_probs f32 [N, slots, V+1] (blank = V)
  Medusa: output logits f32 [N, k, V]

  /usr/bin/python3 scripts/export_onnx.py --out data/onnx
"""
import argparse, json, os, sys

import numpy as np
import torch
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(__file__))
from model import BaseModel, ModelConfig, HeadConfig, rope_cos_sin  # noqa: E402
from onnx_graph import Graph, save  # noqa: E402

F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def np32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def embed_lookup(g, ids, n_dims_out):
    """Gather columns of embed_t [d,V] -> [..., d]. ids [1,S] -> [1,S,d]; ids [N] -> [N,d]."""
    cols = g.op("Gather", ["embed_t", ids], axis=1)  # [d, *ids.shape]
    perm = [1, 2, 0] if n_dims_out == 3 else [1, 0]
    return g.op("Transpose", [cols], perm=perm)


def exact_softmax(g, x):
    """Softmax over the last axis whose result does not depend on where the masked (-inf) entries
    sit or how many there are: max and exp are exact per element, and the sum is taken in float64,
    where adding ≤512 float32 terms in any order gives the same float32 after rounding (a fused
    float32 Softmax sums in SIMD lanes, so a token verified inside a tree would get probabilities
    an ulp away from the same token decoded alone, and int8 re-quantization can amplify that)."""
    axes = g.const(np.array([-1], np.int64), "axes_last")
    e = g.op("Exp", [g.op("Sub", [x, g.op("ReduceMax", [x], axes=[-1], keepdims=1)])])
    total = g.op("ReduceSum", [g.op("Cast", [e], to=TensorProto.DOUBLE), axes], keepdims=1)
    return g.op("Div", [e, g.op("Cast", [total], to=TensorProto.FLOAT)])


def build_base(model: BaseModel):
    cfg = model.cfg
    H, D, d, V = cfg.n_heads, cfg.head_dim, cfg.d_model, cfg.vocab_size
    g = Graph("ctc_edge_base")
    ids = g.input("input_ids", I64, [1, "S"])
    pos = g.input("position_ids", I64, [1, "S"])
    mask = g.input("attention_mask", F32, [1, 1, "S", "T"])
    g.init("embed_t", np32(model.embed.weight).T.copy())
    cos, sin = rope_cos_sin(torch.arange(cfg.max_seq_len).unsqueeze(0), D, cfg.rope_theta)
    g.init("rope_cos", np32(cos[0, 0]))  # [max_seq, D]: looked up, never recomputed
    g.init("rope_sin", np32(sin[0, 0]))
    axis1 = g.const(np.array([1], np.int64), "axis1")
    cos_s = g.op("Unsqueeze", [g.op("Gather", ["rope_cos", pos], axis=0), axis1])  # [1,1,S,D]
    sin_s = g.op("Unsqueeze", [g.op("Gather", ["rope_sin", pos], axis=0), axis1])
    heads_shape = g.shape_const([0, 0, H, D])
    merge_shape = g.shape_const([0, 0, d])
    scale = g.const(np.array(1.0 / np.sqrt(D), np.float32), "attn_scale")

    def rope(x):  # x [1,H,S,D], rotate-half layout
        x1, x2 = g.ops("Split", [x], 2, "half", axis=-1)
        rotated = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
        return g.op("Add", [g.op("Mul", [x, cos_s]), g.op("Mul", [rotated, sin_s])])

    x = embed_lookup(g, ids, 3)
    for i, b in enumerate(model.blocks):
        past_k = g.input(f"past_key_{i}", F32, [1, H, "P", D])
        past_v = g.input(f"past_value_{i}", F32, [1, H, "P", D])
        h = g.rms_norm(x, np32(b.attn_norm.weight), cfg.norm_eps, f"l{i}_attn_norm")
        qkv = g.linear(h, np32(b.attn.wqkv.weight).T, hint=f"l{i}_wqkv")
        q, k, v = (g.op("Transpose", [g.op("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3])
                   for t in g.ops("Split", [qkv], 3, "qkv", axis=-1))
        q, k = rope(q), rope(k)
        k_all = g.op("Concat", [past_k, k], axis=2)
        v_all = g.op("Concat", [past_v, v], axis=2)
        g.output(k_all, f"present_key_{i}", F32, [1, H, "T", D])
        g.output(v_all, f"present_value_{i}", F32, [1, H, "T", D])
        scores = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k_all], perm=[0, 1, 3, 2])]), scale])
        probs = exact_softmax(g, g.op("Add", [scores, mask]))
        attn = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, v_all])], perm=[0, 2, 1, 3]), merge_shape])
        x = g.op("Add", [x, g.linear(attn, np32(b.attn.wo.weight).T, hint=f"l{i}_wo")])
        h = g.rms_norm(x, np32(b.mlp_norm.weight), cfg.norm_eps, f"l{i}_mlp_norm")
        gate, up = g.ops("Split", [g.linear(h, np32(b.mlp.w_gate_up.weight).T, hint=f"l{i}_w_gate_up")],
                         2, "gu", axis=-1)
        x = g.op("Add", [x, g.linear(g.op("Mul", [g.silu(gate), up]), np32(b.mlp.w_down.weight).T,
                                     hint=f"l{i}_w_down")])
    hidden = g.rms_norm(x, np32(model.norm.weight), cfg.norm_eps, "final_norm")
    g.output(hidden, "hidden", F32, [1, "S", d])
    g.output(g.op("MatMul", [hidden, "embed_t"]), "logits", F32, [1, "S", V])
    return g.model()


def head_input(g, base, hcfg):
    hidden = g.input("hidden", F32, ["N", hcfg.d_model])
    tok = g.input("token_ids", I64, ["N"])
    g.init("embed_t", np32(base.embed.weight).T.copy())
    if hcfg.use_token:
        return hidden, g.op("Concat", [hidden, embed_lookup(g, tok, 2)], axis=-1)
    return hidden, hidden


def build_ctc_head(base, head, shortlist=None):
    """shortlist: token ids the head may propose (most frequent first); the read-out then covers
    only them (plus blank), which is most of the head's cost at 16 slots x 4096 tokens."""
    c = head.cfg
    d, S, nh = c.d_model, c.slots, c.n_heads
    g = Graph("ctc_edge_ctc_head")
    _, x = head_input(g, base, c)
    x = g.silu(g.linear(x, np32(head.fuse.weight).T, hint="fuse"))
    x = g.linear(x, np32(head.upsample.weight).T, np32(head.upsample.bias), hint="upsample")
    x = g.op("Add", [g.op("Reshape", [x, g.shape_const([-1, S, d])]), g.const(np32(head.slot_pos), "slot_pos")])
    L = head.layer
    a = g.op("LayerNormalization", [x, g.const(np32(L.norm1.weight), "ln1_w"), g.const(np32(L.norm1.bias), "ln1_b")],
             axis=-1, epsilon=L.norm1.eps)
    qkv = g.linear(a, np32(L.self_attn.in_proj_weight).T, np32(L.self_attn.in_proj_bias), hint="in_proj")
    hs = g.shape_const([0, 0, nh, d // nh])
    q, k, v = (g.op("Transpose", [g.op("Reshape", [t, hs])], perm=[0, 2, 1, 3])
               for t in g.ops("Split", [qkv], 3, "qkv", axis=-1))
    scores = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])]),
                          g.const(np.array(1 / np.sqrt(d // nh), np.float32), "scale")])
    att = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    att = g.op("Reshape", [g.op("Transpose", [att], perm=[0, 2, 1, 3]), g.shape_const([0, 0, d])])
    x = g.op("Add", [x, g.linear(att, np32(L.self_attn.out_proj.weight).T, np32(L.self_attn.out_proj.bias),
                                 hint="out_proj")])
    b = g.op("LayerNormalization", [x, g.const(np32(L.norm2.weight), "ln2_w"), g.const(np32(L.norm2.bias), "ln2_b")],
             axis=-1, epsilon=L.norm2.eps)
    ff = g.linear(g.gelu(g.linear(b, np32(L.linear1.weight).T, np32(L.linear1.bias), hint="ff1")),
                  np32(L.linear2.weight).T, np32(L.linear2.bias), hint="ff2")
    y = g.rms_norm(g.op("Add", [x, ff]), np32(head.norm.weight), c.norm_eps, "head_norm")
    if shortlist is None:
        vocab = g.op("MatMul", [y, "embed_t"])                                    # [N,S,V]
    else:
        table = g.init("lm_shortlist", np32(base.embed.weight).T[:, shortlist].copy())
        vocab = g.op("MatMul", [y, table])                                        # [N,S,n]
    blank = g.op("Add", [g.op("MatMul", [y, g.const(np32(head.blank.weight).T, "blank_w")]),
                         g.const(np32(head.blank.bias), "blank_b")])               # [N,S,1]
    logp = g.op("LogSoftmax", [g.op("Concat", [vocab, blank], axis=-1)], axis=-1)
    g.output(logp, "log_probs", F32, ["N", S, (c.vocab_size if shortlist is None else len(shortlist)) + 1])
    return g.model()


def build_medusa_head(base, head):
    c = head.cfg
    d, k = c.d_model, c.k
    g = Graph("ctc_edge_medusa_head")
    hidden, x = head_input(g, base, c)
    x = g.op("Add", [hidden, g.linear(x, np32(head.fuse.weight).T, hint="fuse")])   # [N,d]
    w_all = np.concatenate([np32(h.weight).T for h in head.heads], axis=1)          # [d, k*d]
    b_all = np.concatenate([np32(h.bias) for h in head.heads])
    stacked = g.op("Reshape", [g.linear(x, w_all, b_all, hint="heads"), g.shape_const([-1, k, d])])
    outs = g.op("Add", [g.op("Unsqueeze", [x, g.const(np.array([1], np.int64), "axis1")]), g.silu(stacked)])
    g.output(g.op("MatMul", [outs, "embed_t"]), "logits", F32, ["N", k, c.vocab_size])
    return g.model()


def load_checkpoint(path):
    return torch.load(path, map_location="cpu")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="checkpoints/base/model.pt")
    ap.add_argument("--ctc", default="checkpoints/ctc/model.pt")
    ap.add_argument("--medusa", default="checkpoints/medusa/model.pt")
    ap.add_argument("--out", default="data/onnx")
    ap.add_argument("--ctc-shortlist", type=int, default=0,
                    help="CTC head proposes only the N most frequent training tokens (0 = all)")
    ap.add_argument("--data", default="data/tokens")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    st = load_checkpoint(args.base)
    base = BaseModel(ModelConfig(**st["config"]))
    base.load_state_dict(st["model"])
    base.eval()
    save(build_base(base), os.path.join(args.out, "base.onnx"))
    info = {"config": base.cfg.to_dict(), "train": {k: st.get(k) for k in ("step", "tokens", "elapsed", "val_loss")}}
    from model import CTCDraftHead, MedusaHeads
    shortlist = None
    if args.ctc_shortlist:
        counts = np.bincount(np.fromfile(os.path.join(args.data, "train.bin"), dtype=np.uint16),
                             minlength=base.cfg.vocab_size)
        shortlist = [int(i) for i in np.argsort(-counts, kind="stable")[:args.ctc_shortlist]]
        info["ctc_shortlist"] = shortlist
        info["ctc_shortlist_coverage"] = float(counts[shortlist].sum() / counts.sum())
    for kind, path, cls, build in (("ctc", args.ctc, CTCDraftHead, lambda b, h: build_ctc_head(b, h, shortlist)),
                                   ("medusa", args.medusa, MedusaHeads, build_medusa_head)):
        if not path or not os.path.exists(path):
            print(f"no {kind} head at {path}; skipped")
            continue
        hs = load_checkpoint(path)
        head = cls(HeadConfig(**hs["config"]))
        head.load_state_dict(hs["model"])
        head.eval()
        save(build(base, head), os.path.join(args.out, f"{kind}_head.onnx"))
        info[f"{kind}_head"] = {"config": hs["config"], "summary": hs.get("summary")}
    with open(os.path.join(args.out, "export.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(f"exported to {args.out}: " + ", ".join(sorted(os.listdir(args.out))))


if __name__ == "__main__":
    main()
