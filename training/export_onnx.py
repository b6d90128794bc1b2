"""Export the base model and the draft heads to fp32 ONNX (opset 17), op by op.

Base model, KV interface 2 (batch 1; S new tokens, P = F*B + Pt cached tokens in panels of B):
  inputs  input_ids int64 [1,S], position_ids int64 [1,S],
          attention_mask f32 [1,1,S,Pt+S] (additive, over the tail block: the Pt cached positions of
          the partial last panel, always 0, then the S new rows; the F full panels are always seen),
          tail_groups f32 [G,1,Pt+S] (1 where a tail-block column's position is in panel F+g),
          past_key_i / past_value_i f32 [F,H,B,D] (full panels of layer i),
          past_tail f32 [2L,H,Pt,D] (every layer's K and V of the partial last panel)
  outputs logits f32 [1,S,V], hidden f32 [1,S,d] (after the final norm),
          new_kv f32 [2L,H,S,D]: the new tokens' keys and values only (row 2i = layer i's K,
          2i+1 its V); the caller keeps the cache and appends them.
The mask makes a token tree verifiable in one pass: row j sees the P cached positions plus its
ancestors and itself. One [d,V] table (`embed_t`) is both the embedding and the tied LM head
(an untied model has a second one, `lm_head_t`).

Draft heads (build_prefix_head: one causal layer over the prefix with its own KV cache, read out from
the newest position): CTC log_probs f32 [slots, V'+1] (blank last), Medusa logits f32 [k, V'], over
the head's shortlist of V' tokens.

  /usr/bin/python3 -m training.export_onnx --out data/onnx
"""
import argparse, json, os, time

import numpy as np
import onnx
import torch
from onnx import TensorProto

from training.model import BaseModel, ModelConfig, PrefixDraftHead, PrefixHeadConfig, rope_cos_sin
from training.onnx_graph import Graph, save
from training.progress import bar, elapsed, summary

F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def np32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def embed_lookup(g, ids, n_dims_out):
    """Gather columns of embed_t [d,V] -> [..., d]. ids [1,S] -> [1,S,d]; ids [N] -> [N,d]."""
    cols = g.op("Gather", ["embed_t", ids], axis=1)  # [d, *ids.shape]
    perm = [1, 2, 0] if n_dims_out == 3 else [1, 0]
    return g.op("Transpose", [cols], perm=perm)


# The cache is kept in panels of this many positions (see panel_attention); any size up to 128
# keeps every full-panel MatMul inside one MLAS K-panel. 32 measured fastest of 32/64/128 (decode
# at 480 cached tokens), measured on the graph's first version, whose tail block was padded to panels.
PANEL = 32
# Columns of the tail block (cached positions of the partial last panel + new rows) at most: one
# MatMul sums over them, which MLAS does in one pass up to its StrideK of 256.
MAX_TAIL_ROWS = 256


def attention_shared(g, past_full0, groups, B, max_rows):
    """Shapes and constants every layer's attention shares, computed once per run."""
    i64 = lambda v: g.const(np.array(v, np.int64), "i")
    dim = lambda t, i: g.op("Gather", [g.op("Shape", [t]), i64(i)], axis=0)
    one = lambda t: g.op("Unsqueeze", [t, i64([0])])
    F, R = dim(past_full0, 0), dim(groups, 2)
    return {
        "ones_b": g.const(np.ones((B, 1), np.float32), "ones_b"),
        "ones_r": g.op("Slice", [g.const(np.ones((max_rows, 1), np.float32), "ones_rows"), i64([0]), one(R), i64([0])]),
        "expand_f": g.op("Concat", [one(F), i64([1, 1, 1])], axis=0),
        "i64": i64,
    }


def panel_attention(g, sh, q, k_full, k_tail, k_new, v_full, v_tail, v_new, mask, groups, scale, ones_n,
                    out_shape, den_shape):
    """softmax(q k^T * scale + mask) v for S new query rows, computed so that a row's result is
    bit-identical whatever S is, wherever the row sits in the batch and whatever tree it is in.

    Why panels: onnxruntime's float MatMul does not sum over K in one fixed order. With M >= 2
    rows, MLAS SGEMM walks K in panels of StrideK and adds each panel's partial sums into C
    (StrideK = 256 when N = 64 output columns: MLAS_SGEMM_STRIDEK is 128 and doubles because
    N <= 64); with M = 1 the same MatMul sums all of K in one pass. So probs @ V for a 16-token
    verify (M = 16) and for a one-token decode (M = 1) round differently once more than 256
    positions are attended, and the int8 re-quantization downstream turns those last-bit
    differences into logit changes that flip near-tie argmaxes. Here every position belongs to the
    panel [jB, (j+1)B) of its *position* (not of its row: in a tree, siblings share positions and
    a node's row is its index), each panel's weighted sum is one MatMul over at most 256 columns
    (summed in one pass by both kernel paths), and the panel sums are added in panel order by a
    MatMul with M = 1 and K = number of panels. Masked columns contribute exact zeros and adding
    zeros changes nothing, so a row's result does not depend on how many masked columns sit
    between or after its terms. The softmax denominator is summed the same way (ones columns);
    max and exp are per element.

    Full panels of the cache are fed as [F,H,B,D] straight from the engine's panel-major buffers
    (no copy beyond the one onnxruntime-web makes of every input). The tail block holds the Pt
    cached positions of the partial last panel and the S new rows (R = Pt + S columns); `groups`
    [G,1,R] (0/1) assigns each column to the position panel F + g it belongs to.

    q [1,H,S,D]; k_full/v_full [F,H,B,D]; k_tail/v_tail [1,H,Pt,D]; k_new/v_new [1,H,S,D];
    mask [1,1,S,R] -> [1,H,S,D]."""
    i64 = sh["i64"]
    tr = lambda t: g.op("Transpose", [t], perm=[0, 1, 3, 2])
    # q is expanded to the F panels explicitly: onnxruntime's MatMul will not broadcast 1 to 0
    q_f = g.op("Expand", [q, sh["expand_f"]])                                          # [F,H,S,D]
    s_full = g.op("Mul", [g.op("MatMul", [q_f, tr(k_full)]), scale])                   # [F,H,S,B]
    s_tail = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, tr(g.op("Concat", [k_tail, k_new], axis=2))]), scale]),
                          mask])                                                        # [1,H,S,R]
    m = g.op("Max", [g.op("ReduceMax", [s_full], axes=[0, 3], keepdims=1),
                     g.op("ReduceMax", [s_tail], axes=[3], keepdims=1)])                  # [1,H,S,1]
    e_full = g.op("Exp", [g.op("Sub", [s_full, m])])                                    # [F,H,S,B]
    e_tail = g.op("Mul", [g.op("Unsqueeze", [g.op("Exp", [g.op("Sub", [s_tail, m])]), i64([2])]), groups])  # [1,H,G,S,R]
    v_tail = g.op("Unsqueeze", [g.op("Concat", [v_tail, v_new], axis=2), i64([2])])     # [1,H,1,R,D]
    # per-panel sums, in panel order: [1, n, H, S, X] with n = F + G
    to_panels = lambda full, tail: g.op("Concat", [g.op("Unsqueeze", [full, i64([0])]),
                                                   g.op("Transpose", [tail], perm=[0, 2, 1, 3, 4])], axis=1)
    num = to_panels(g.op("MatMul", [e_full, v_full]), g.op("MatMul", [e_tail, v_tail]))
    den = to_panels(g.op("MatMul", [e_full, sh["ones_b"]]), g.op("MatMul", [e_tail, sh["ones_r"]]))
    add_panels = lambda t: g.op("MatMul", [ones_n, g.op("Reshape", [t, i64([0, 0, -1])])])  # [1,1,H*S*X]
    return g.op("Div", [g.op("Reshape", [add_panels(num), out_shape]), g.op("Reshape", [add_panels(den), den_shape])])


def build_base(model: BaseModel, panel=PANEL):
    cfg = model.cfg
    H, D, d, V = cfg.n_heads, cfg.head_dim, cfg.d_model, cfg.vocab_size
    assert cfg.max_seq_len % panel == 0
    g = Graph("ctc_edge_base")
    ids = g.input("input_ids", I64, [1, "S"])
    pos = g.input("position_ids", I64, [1, "S"])
    mask = g.input("attention_mask", F32, [1, 1, "S", "R"])
    groups = g.input("tail_groups", F32, ["G", 1, "R"])
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

    # One input holds every buffer's tail (each input costs a fixed few microseconds per run);
    # the full panels stay one input per buffer so that they need no copy.
    tails = g.input("past_tail", F32, [2 * cfg.n_layers, H, "Pt", D])
    past = {}
    for i in range(cfg.n_layers):
        for j, kind in enumerate(("key", "value")):
            tail = g.op("Gather", [tails, g.const(np.array([2 * i + j], np.int64), "i")], axis=0)  # [1,H,Pt,D]
            past[kind, i] = (g.input(f"past_{kind}_{i}", F32, ["F", H, panel, D]), tail)
    sh = attention_shared(g, past["key", 0][0], groups, panel, MAX_TAIL_ROWS)
    i64 = sh["i64"]
    n_panels = g.op("Add", [g.op("Gather", [g.op("Shape", [past["key", 0][0]]), i64(0)], axis=0),
                            g.op("Gather", [g.op("Shape", [groups]), i64(0)], axis=0)])
    ones_n = g.op("Slice", [g.const(np.ones((1, 1, cfg.max_seq_len // panel + 8), np.float32), "ones_row"),
                            i64([0]), g.op("Unsqueeze", [n_panels, i64([0])]), i64([2])])  # [1,1,n]
    S1 = g.op("Unsqueeze", [g.op("Gather", [g.op("Shape", [ids]), i64(1)], axis=0), i64([0])])
    out_shape = g.op("Concat", [i64([1, H]), S1, i64([D])], axis=0)
    den_shape = g.op("Concat", [i64([1, H]), S1, i64([1])], axis=0)

    x = embed_lookup(g, ids, 3)
    new_kv = []
    for i, b in enumerate(model.blocks):
        h = g.rms_norm(x, np32(b.attn_norm.weight), cfg.norm_eps, f"l{i}_attn_norm")
        qkv = g.linear(h, np32(b.attn.wqkv.weight).T, hint=f"l{i}_wqkv")
        q, k, v = (g.op("Transpose", [g.op("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3])
                   for t in g.ops("Split", [qkv], 3, "qkv", axis=-1))
        q, k = rope(q), rope(k)
        new_kv += [k, v]
        (kf, kt), (vf, vt) = past["key", i], past["value", i]
        attn = panel_attention(g, sh, q, kf, kt, k, vf, vt, v, mask, groups, scale, ones_n, out_shape, den_shape)
        attn = g.op("Reshape", [g.op("Transpose", [attn], perm=[0, 2, 1, 3]), merge_shape])
        x = g.op("Add", [x, g.linear(attn, np32(b.attn.wo.weight).T, hint=f"l{i}_wo")])
        h = g.rms_norm(x, np32(b.mlp_norm.weight), cfg.norm_eps, f"l{i}_mlp_norm")
        gate, up = g.ops("Split", [g.linear(h, np32(b.mlp.w_gate_up.weight).T, hint=f"l{i}_w_gate_up")],
                         2, "gu", axis=-1)
        x = g.op("Add", [x, g.linear(g.op("Mul", [g.silu(gate), up]), np32(b.mlp.w_down.weight).T,
                                     hint=f"l{i}_w_down")])
    g.output(g.op("Concat", new_kv, axis=0), "new_kv", F32, [2 * cfg.n_layers, H, "S", D])
    hidden = g.rms_norm(x, np32(model.norm.weight), cfg.norm_eps, "final_norm")
    g.output(hidden, "hidden", F32, [1, "S", d])
    # an untied model (training/convert_hf.py) reads its logits out of a [d,V] table of its own
    lm = "embed_t" if cfg.tie_embeddings else g.init("lm_head_t", np32(model.output.weight).T.copy())
    g.output(g.op("MatMul", [hidden, lm]), "logits", F32, [1, "S", V])
    return g.model()


def slot_layer(g, x, L, d, nh):
    """nn.TransformerEncoderLayer (norm_first, gelu) over [N,S,d], written out."""
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
    return g.op("Add", [x, ff])


def build_prefix_head(base, head, shortlist=0):
    """A draft head (PrefixDraftHead) with its own KV cache; one run per round.

    inputs  hidden f32 [1,m,d] (the base model's hidden rows of the m positions the head has not
            seen yet), next_ids int64 [1,m] (token t+1 for position t), position_ids int64 [1,m],
            attention_mask f32 [1,1,m,Ph+m] (additive, causal), past_key / past_value f32 [1,Hh,Ph,Dh]
    outputs ctc: log_probs f32 [slots, V'+1] (blank last) from the newest position;
            medusa: logits f32 [k, V']; new_key / new_value f32 [1,Hh,m,Dh] (the head appends them)
    V' = the head's shortlist (its `shortlist_ids`: class i is that token), or the vocabulary; shortlist > 0
    keeps only its first N classes (the most frequent tokens: a smaller read-out; the rest stay reachable
    through prompt lookup). The graph's metadata `dynamic_weights` names the MatMul weights that see
    the newest row only (quantize.py --dynamic-weights auto: row-exactness buys nothing there).
    training/fuse_head.py puts this graph, unchanged, into the verify pass."""
    c = head.cfg
    d, nh = c.d_model, c.n_heads
    D = d // nh
    g = Graph(f"ctc_edge_{c.kind}_head")
    hidden = g.input("hidden", F32, [1, "m", d])
    ids = g.input("next_ids", I64, [1, "m"])
    pos = g.input("position_ids", I64, [1, "m"])
    mask = g.input("attention_mask", F32, [1, 1, "m", "T"])
    past_k = g.input("past_key", F32, [1, nh, "Ph", D])
    past_v = g.input("past_value", F32, [1, nh, "Ph", D])
    g.init("embed_t", np32(base.embed.weight).T.copy())
    x = g.linear(g.op("Concat", [embed_lookup(g, ids, 3), hidden], axis=-1), np32(head.fuse.weight).T, hint="fuse")
    cos, sin = rope_cos_sin(torch.arange(c.max_seq_len).unsqueeze(0), D, c.rope_theta)
    g.init("rope_cos", np32(cos[0, 0]))
    g.init("rope_sin", np32(sin[0, 0]))
    axis1 = g.const(np.array([1], np.int64), "axis1")
    cos_s = g.op("Unsqueeze", [g.op("Gather", ["rope_cos", pos], axis=0), axis1])
    sin_s = g.op("Unsqueeze", [g.op("Gather", ["rope_sin", pos], axis=0), axis1])

    def rope(t):
        t1, t2 = g.ops("Split", [t], 2, "half", axis=-1)
        return g.op("Add", [g.op("Mul", [t, cos_s]), g.op("Mul", [g.op("Concat", [g.op("Neg", [t2]), t1], axis=-1), sin_s])])

    b = head.block
    h = g.rms_norm(x, np32(b.attn_norm.weight), c.norm_eps, "attn_norm")
    q, k, v = (g.op("Transpose", [g.op("Reshape", [t, g.shape_const([0, 0, nh, D])])], perm=[0, 2, 1, 3])
               for t in g.ops("Split", [g.linear(h, np32(b.attn.wqkv.weight).T, hint="wqkv")], 3, "qkv", axis=-1))
    q, k = rope(q), rope(k)
    g.output(k, "new_key", F32, [1, nh, "m", D])
    g.output(v, "new_value", F32, [1, nh, "m", D])
    # Only the newest position's output is read, and with one layer the other positions contribute
    # only their K/V, which depend on their own row alone (row-wise int8). So attention, FFN and
    # read-out run for the last row only: a query of one row sums over the cache in one pass, and the
    # draft is a function of the cached rows whatever m was (a restored session drafts the same).
    last = g.const(np.array([-1], np.int64), "last_row")
    q = g.op("Gather", [q, last], axis=2)                                                   # [1,H,1,D]
    x = g.op("Gather", [x, last], axis=1)                                                   # [1,1,d]
    mask = g.op("Gather", [mask, last], axis=2)                                             # [1,1,1,T]
    k_all, v_all = g.op("Concat", [past_k, k], axis=2), g.op("Concat", [past_v, v], axis=2)
    scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k_all], perm=[0, 1, 3, 2])]),
                                       g.const(np.array(1 / np.sqrt(D), np.float32), "scale")]), mask])
    att = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v_all])
    att = g.op("Reshape", [g.op("Transpose", [att], perm=[0, 2, 1, 3]), g.shape_const([0, 0, d])])
    x = g.op("Add", [x, g.linear(att, np32(b.attn.wo.weight).T, hint="wo")])
    h = g.rms_norm(x, np32(b.mlp_norm.weight), c.norm_eps, "mlp_norm")
    gate, up = g.ops("Split", [g.linear(h, np32(b.mlp.w_gate_up.weight).T, hint="w_gate_up")], 2, "gu", axis=-1)
    x = g.op("Add", [x, g.linear(g.op("Mul", [g.silu(gate), up]), np32(b.mlp.w_down.weight).T, hint="w_down")])
    u = g.rms_norm(x, np32(head.norm.weight), c.norm_eps, "head_norm")
    u = g.op("Reshape", [u, g.shape_const([1, d])])                                          # [1,d]
    ids = head.shortlist_ids.cpu().numpy()
    if shortlist:
        ids = ids[:shortlist]
    n = len(ids)
    table = g.init("lm_shortlist", np32(base.embed.weight).T[:, ids].copy())                 # [d,V']
    if c.kind == "ctc":
        ds = c.slot_dim
        sl = g.op("Add", [g.op("Reshape", [g.linear(u, np32(head.upsample.weight).T, np32(head.upsample.bias), hint="upsample"),
                                          g.shape_const([1, c.slots, ds])]),
                          g.const(np32(head.slot_emb)[None], "slot_emb")])                    # [1,slots,ds]
        if head.slot_layer is not None:
            sl = slot_layer(g, sl, head.slot_layer, ds, nh)
        y = g.linear(sl, np32(head.slot_out.weight).T, hint="slot_out")
        y = g.rms_norm(y, np32(head.slot_norm.weight), c.norm_eps, "slot_norm")             # [1,slots,d]
        blank = g.op("Add", [g.op("MatMul", [y, g.const(np32(head.blank.weight).T, "blank_w")]),
                             g.const(np32(head.blank.bias), "blank_b")])
        logp = g.op("LogSoftmax", [g.op("Concat", [g.op("MatMul", [y, table]), blank], axis=-1)], axis=-1)
        g.output(g.op("Reshape", [logp, g.shape_const([c.slots, n + 1])]), "log_probs", F32, [c.slots, n + 1])
    else:
        w_all = np.concatenate([np32(hh.weight).T for hh in head.heads], axis=1)
        b_all = np.concatenate([np32(hh.bias) for hh in head.heads])
        stacked = g.op("Reshape", [g.linear(u, w_all, b_all, hint="heads"), g.shape_const([c.k, d])])
        outs = g.op("Add", [u, g.silu(stacked)])                                              # [k,d]
        g.output(g.op("MatMul", [outs, table]), "logits", F32, [c.k, n])
    m = g.model()
    newest = ["wo", "w_gate_up", "w_down", "lm_shortlist"] + (
        ["upsample", "slot_out"] + (["in_proj", "out_proj", "ff1", "ff2"] if head.slot_layer is not None else [])
        if c.kind == "ctc" else ["heads"])
    onnx.helper.set_model_props(m, {"dynamic_weights": ",".join(newest)})
    return m


def load_checkpoint(path):
    return torch.load(path, map_location="cpu")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="checkpoints/base/model.pt")
    ap.add_argument("--ctc", default="checkpoints/ctc/model.pt", help="the CTC head; skipped when absent")
    ap.add_argument("--medusa", default="checkpoints/medusa/model.pt", help="the Medusa head (the baseline); skipped when absent")
    ap.add_argument("--out", default="data/onnx")
    ap.add_argument("--kv-panel", type=int, default=PANEL,
                    help="positions per KV-cache panel (attention is summed panel by panel)")
    ap.add_argument("--only", default="", help="comma-separated subset of base,ctc,medusa to export "
                                                "(export.json then lists only those; default: all)")
    ap.add_argument("--shortlist", type=int, default=0,
                    help="heads: read out only the first N classes of their shortlist (0 = all they were trained with)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    want = lambda kind: not only or kind in only
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    todo = [k for k, p in (("base", args.base), ("ctc", args.ctc), ("medusa", args.medusa)) if want(k) and p and os.path.exists(p)]
    meter = bar(total=len(todo), desc="export", unit="graph")
    st = load_checkpoint(args.base)
    base = BaseModel(ModelConfig(**st["config"]))
    base.load_state_dict(st["model"])
    base.eval()
    if want("base"):
        save(build_base(base, args.kv_panel), os.path.join(args.out, "base.onnx"))
        meter.set_postfix_str("base", refresh=False)
        meter.update()
    info = {"config": base.cfg.to_dict(), "kv_panel": args.kv_panel, "train": {k: st.get(k) for k in ("step", "tokens", "elapsed", "val_loss")}}
    for kind, path in (("ctc", args.ctc), ("medusa", args.medusa)):
        if not want(kind) or not path or not os.path.exists(path):
            continue
        hs = load_checkpoint(path)
        head = PrefixDraftHead(PrefixHeadConfig(**hs["config"]))
        assert head.cfg.kind == kind, f"{path} holds a {head.cfg.kind} head, not {kind}"
        head.load_state_dict(hs["model"])
        head.eval()
        save(build_prefix_head(base, head, args.shortlist), os.path.join(args.out, f"{kind}_head.onnx"))
        meter.set_postfix_str(kind, refresh=False)
        meter.update()
        ids = [int(i) for i in head.shortlist_ids][:args.shortlist or None]
        info[f"{kind}_head"] = {"config": head.cfg.to_dict(), "summary": hs.get("summary"),
                                "shortlist": ids if head.cfg.shortlist_size or args.shortlist else None}
    with open(os.path.join(args.out, "export.json"), "w") as f:
        json.dump(info, f, indent=2)
    meter.close()
    print(f"exported to {args.out}: " + ", ".join(sorted(os.listdir(args.out))))
    summary(f"export: {meter.n} graphs ({', '.join(todo)}) in {elapsed(t0)} -> {args.out}")


if __name__ == "__main__":
    main()
