"""Export the base model a second time, in the Hugging Face / transformers.js layout (model_type llama).

  /usr/bin/python3 -m training.export_hf [--base checkpoints/base/model.pt] [--model-dir model-shards/default]
                                         [--out model-hf/default]

writes, from the same weights as the shipped model:
  config.json             LlamaForCausalLM, model_type "llama" (the architecture is Llama's, see below)
  generation_config.json  greedy by default; eos_token_id lists the engine's stop tokens, the tokenizer's
                          </s> and <s> (documents are separated by <s> in the training corpus)
  tokenizer.json          the shipped tokenizer (from the model's shards) plus a post-processor that
                          puts <s> first, as LlamaTokenizer does (the engine adds <s> itself)
  tokenizer_config.json   LlamaTokenizerFast, add_bos_token, the API's chat template (CHAT_TEMPLATE)
  onnx/model_quantized.onnx
                          the standard decoder-with-past interface of Optimum exports:
                            inputs  input_ids int64 [batch, seq], attention_mask int64 [batch, past+seq],
                                    position_ids int64 [batch, seq],
                                    past_key_values.{i}.key / .value f32 [batch, 4, past, 64]
                            outputs logits f32 [batch, seq, 4096],
                                    present.{i}.key / .value f32 [batch, 4, past+seq, 64]
                          int8 row-wise like the shipped graph (training/quantize.py: the same int8
                          weights and scales, activations quantized per token).

Why model_type llama: training/model.py is Llama's math term for term. RMSNorm x * rsqrt(mean(x^2) +
eps) * w with eps 1e-5 (rms_norm_eps); rotary positions in the rotate-half layout over the whole head
(inv_freq = theta^(-2i/D), cos/sin of [freqs, freqs], theta 10000: rope_theta, no scaling) applied to q
and k after the head split; attention scale 1/sqrt(64), 4 query heads and 4 K/V heads
(num_key_value_heads = 4, no grouping); SwiGLU w_down(silu(gate) * up) (hidden_act silu, the fused
w_gate_up rows split into gate_proj then up_proj); pre-norm residual blocks and a final norm; no
biases anywhere (attention_bias, mlp_bias false); the LM head is the embedding (tie_word_embeddings).
The fused wqkv rows are q_proj, k_proj, v_proj in that order. So a PyTorch checkpoint written from
these weights under Llama's parameter names (hf_state_dict) would load into transformers'
LlamaForCausalLM unchanged. The export checks it: Llama's forward written from transformers' definition
(llama_logits, driven by config.json) must give training/model.py's logits on random tokens (max
difference under 1e-4; it prints the difference).

The attention inside the graph is summed in the shipped graph's way (training/export_onnx.py,
panel_attention): the key/value positions are grouped in panels of 32 by absolute position (the
last panel zero-padded, its padding masked), each panel's weighted sum is one MatMul, the panel sums
are added in order by one M = 1 MatMul, and the softmax denominator is summed the same way. A row's
numbers then do not depend on how many rows share its pass, so a prompt prefilled in one pass (as
transformers.js does) gives the same logits as the engine's prefill in pieces and its token-by-token
decoding. Everything else (embedding, RMSNorm, rotary tables, the row-wise int8 matmuls) is the same
op sequence as the shipped graph.
"""
import argparse, json, os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto

from training.export_onnx import embed_lookup, np32, PANEL
from training.model import BaseModel, ModelConfig, rope_cos_sin
from training.onnx_graph import Graph, save
from training.quantize import quantize

F32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
# Positions the graph supports at most, in panels (the model's context is 512 = 16 panels).
MAX_PANELS = 64


def build_hf_decoder(model: BaseModel, panel=PANEL):
    cfg = model.cfg
    H, D, d, V, L = cfg.n_heads, cfg.head_dim, cfg.d_model, cfg.vocab_size, cfg.n_layers
    g = Graph("ctc_edge_base_hf")
    i64 = lambda v: g.const(np.array(v, np.int64), "i")
    ids = g.input("input_ids", I64, ["batch_size", "sequence_length"])
    am = g.input("attention_mask", I64, ["batch_size", "total_sequence_length"])
    pos = g.input("position_ids", I64, ["batch_size", "sequence_length"])
    past = [(g.input(f"past_key_values.{i}.key", F32, ["batch_size", H, "past_sequence_length", D]),
             g.input(f"past_key_values.{i}.value", F32, ["batch_size", H, "past_sequence_length", D]))
            for i in range(L)]
    g.init("embed_t", np32(model.embed.weight).T.copy())
    cos, sin = rope_cos_sin(torch.arange(cfg.max_seq_len).unsqueeze(0), D, cfg.rope_theta)
    g.init("rope_cos", np32(cos[0, 0]))
    g.init("rope_sin", np32(sin[0, 0]))
    axis1 = g.const(np.array([1], np.int64), "axis1")
    cos_s = g.op("Unsqueeze", [g.op("Gather", ["rope_cos", pos], axis=0), axis1])  # [B,1,S,D]
    sin_s = g.op("Unsqueeze", [g.op("Gather", ["rope_sin", pos], axis=0), axis1])
    heads_shape = g.shape_const([0, 0, H, D])
    merge_shape = g.shape_const([0, 0, d])
    scale = g.const(np.array(1.0 / np.sqrt(D), np.float32), "attn_scale")

    def rope(x):  # x [B,H,S,D], rotate-half layout
        x1, x2 = g.ops("Split", [x], 2, "half", axis=-1)
        rotated = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
        return g.op("Add", [g.op("Mul", [x, cos_s]), g.op("Mul", [rotated, sin_s])])

    # ---- shapes and the mask, shared by every layer ----------------------------------------------
    dim = lambda t, i: g.op("Gather", [g.op("Shape", [t]), i64(i)], axis=0)  # scalar int64
    one = lambda t: g.op("Unsqueeze", [t, i64([0])])                         # scalar -> [1]
    Bn, S, T = dim(ids, 0), dim(ids, 1), dim(am, 1)
    P = g.op("Sub", [T, S])
    n = g.op("Div", [g.op("Add", [T, i64(panel - 1)]), i64(panel)])           # panels
    Tp = g.op("Mul", [n, i64(panel)])
    pad = g.op("Sub", [Tp, T])
    # keys/values [B,H,T,D] -> zero-padded to Tp -> panels [n,B,H,panel,D]
    kv_pads = g.op("Concat", [i64([0, 0, 0, 0, 0, 0]), one(pad), i64([0])], axis=0)
    to_panels_shape = g.op("Concat", [one(Bn), i64([H]), one(n), i64([panel, D])], axis=0)
    kv_panels = lambda t: g.op("Transpose", [g.op("Reshape", [g.op("Pad", [t, kv_pads]), to_panels_shape])],
                               perm=[2, 0, 1, 3, 4])
    # additive mask [n,B,1,S,panel]: column j is seen by row r (position P + r) iff j <= P + r,
    # j < T and attention_mask[b, j] = 1; unseen columns get -inf (exp gives an exact 0)
    cols = g.op("Range", [i64(0), Tp, i64(1)])                                       # [Tp]
    rows = g.op("Unsqueeze", [g.op("Add", [g.op("Range", [i64(0), S, i64(1)]), P]), i64([1])])  # [S,1]
    causal = g.op("LessOrEqual", [cols, rows])                                         # [S,Tp]
    am_p = g.op("Pad", [am, g.op("Concat", [i64([0, 0, 0]), one(pad)], axis=0)])      # [B,Tp], 0 padded
    seen = g.op("And", [g.op("Unsqueeze", [causal, i64([0, 1])]),
                        g.op("Unsqueeze", [g.op("Equal", [am_p, i64(1)]), i64([1, 2])])])  # [B,1,S,Tp]
    add_mask = g.op("Where", [seen, g.const(np.array(0.0, np.float32), "zero"),
                              g.const(np.array(-np.inf, np.float32), "neg_inf")])
    mask_shape = g.op("Concat", [one(Bn), i64([1]), one(S), one(n), i64([panel])], axis=0)
    mask_p = g.op("Transpose", [g.op("Reshape", [add_mask, mask_shape])], perm=[3, 0, 1, 2, 4])  # [n,B,1,S,panel]
    expand_q = g.op("Concat", [one(n), i64([1, 1, 1, 1])], axis=0)
    ones_b = g.const(np.ones((panel, 1), np.float32), "ones_b")
    ones_n = g.op("Slice", [g.const(np.ones((1, 1, MAX_PANELS), np.float32), "ones_row"),
                            i64([0]), one(n), i64([2])])                                # [1,1,n]
    out_shape = g.op("Concat", [one(Bn), i64([H]), one(S), i64([D])], axis=0)
    den_shape = g.op("Concat", [one(Bn), i64([H]), one(S), i64([1])], axis=0)
    add_panels = lambda t: g.op("MatMul", [ones_n, g.op("Reshape", [t, g.op("Concat", [i64([1]), one(n), i64([-1])], axis=0)])])

    def attention(q, k_all, v_all):
        """q [B,H,S,D], k_all/v_all [B,H,T,D] -> [B,H,S,D], summed panel by panel (see the module doc)."""
        q_n = g.op("Expand", [g.op("Unsqueeze", [q, i64([0])]), expand_q])              # [n,B,H,S,D]
        kp, vp = kv_panels(k_all), kv_panels(v_all)                                     # [n,B,H,panel,D]
        s = g.op("Add", [g.op("Mul", [g.op("MatMul", [q_n, g.op("Transpose", [kp], perm=[0, 1, 2, 4, 3])]), scale]),
                         mask_p])                                                       # [n,B,H,S,panel]
        m = g.op("ReduceMax", [s], axes=[0, 4], keepdims=1)                             # [1,B,H,S,1]
        e = g.op("Exp", [g.op("Sub", [s, m])])
        num = add_panels(g.op("MatMul", [e, vp]))                                       # [1,1,B*H*S*D]
        den = add_panels(g.op("MatMul", [e, ones_b]))                                   # [1,1,B*H*S]
        return g.op("Div", [g.op("Reshape", [num, out_shape]), g.op("Reshape", [den, den_shape])])

    x = embed_lookup(g, ids, 3)                                                        # [B,S,d]
    for i, b in enumerate(model.blocks):
        h = g.rms_norm(x, np32(b.attn_norm.weight), cfg.norm_eps, f"l{i}_attn_norm")
        qkv = g.linear(h, np32(b.attn.wqkv.weight).T, hint=f"l{i}_wqkv")
        q, k, v = (g.op("Transpose", [g.op("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3])
                   for t in g.ops("Split", [qkv], 3, "qkv", axis=-1))
        q, k = rope(q), rope(k)
        k_all = g.op("Concat", [past[i][0], k], axis=2)
        v_all = g.op("Concat", [past[i][1], v], axis=2)
        g.output(k_all, f"present.{i}.key", F32, ["batch_size", H, "total_sequence_length", D])
        g.output(v_all, f"present.{i}.value", F32, ["batch_size", H, "total_sequence_length", D])
        attn = g.op("Reshape", [g.op("Transpose", [attention(q, k_all, v_all)], perm=[0, 2, 1, 3]), merge_shape])
        x = g.op("Add", [x, g.linear(attn, np32(b.attn.wo.weight).T, hint=f"l{i}_wo")])
        h = g.rms_norm(x, np32(b.mlp_norm.weight), cfg.norm_eps, f"l{i}_mlp_norm")
        gate, up = g.ops("Split", [g.linear(h, np32(b.mlp.w_gate_up.weight).T, hint=f"l{i}_w_gate_up")],
                         2, "gu", axis=-1)
        x = g.op("Add", [x, g.linear(g.op("Mul", [g.silu(gate), up]), np32(b.mlp.w_down.weight).T,
                                     hint=f"l{i}_w_down")])
    hidden = g.rms_norm(x, np32(model.norm.weight), cfg.norm_eps, "final_norm")
    lm = "embed_t" if cfg.tie_embeddings else g.init("lm_head_t", np32(model.output.weight).T.copy())
    g.output(g.op("MatMul", [hidden, lm]), "logits", F32, ["batch_size", "sequence_length", V])
    # present.* first, then logits, as Optimum orders them; transformers.js looks outputs up by name
    return g.model()


def hf_state_dict(model: BaseModel):
    """The weights under transformers' LlamaForCausalLM names (nn.Linear layout [out, in])."""
    d, f = model.cfg.d_model, model.cfg.ffn_hidden
    sd = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.norm.weight,
          "lm_head.weight": model.lm_weight()}
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        q, k, v = b.attn.wqkv.weight.split(d, dim=0)
        gate, up = b.mlp.w_gate_up.weight.split(f, dim=0)
        sd.update({p + "input_layernorm.weight": b.attn_norm.weight, p + "post_attention_layernorm.weight": b.mlp_norm.weight,
                   p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k, p + "self_attn.v_proj.weight": v,
                   p + "self_attn.o_proj.weight": b.attn.wo.weight, p + "mlp.gate_proj.weight": gate,
                   p + "mlp.up_proj.weight": up, p + "mlp.down_proj.weight": b.mlp.w_down.weight})
    return {k: t.detach() for k, t in sd.items()}


@torch.no_grad()
def llama_logits(sd, c, ids):
    """LlamaForCausalLM's forward written from its definition (LlamaRMSNorm, LlamaRotaryEmbedding with
    default rope, apply_rotary_pos_emb / rotate_half, eager attention with repeat_kv, LlamaMLP), over
    the weights `sd` under Llama's names and the config dict `c` (config.json). ids [B,T] -> [B,T,V]."""
    def rms(x, w):
        x32 = x.to(torch.float32)
        return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + c["rms_norm_eps"]))

    B, T = ids.shape
    H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    pos = torch.arange(T)[None].expand(B, T)
    freqs = (inv_freq[None, :, None] @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    rot = lambda x: torch.cat((-x[..., D // 2:], x[..., :D // 2]), dim=-1)
    causal = torch.full((T, T), float("-inf")).triu(1)
    lin = lambda x, name: x @ sd[name].t() + (sd[name.replace("weight", "bias")] if name.replace("weight", "bias") in sd else 0)
    x = sd["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, sd[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj.weight").view(B, T, H, D).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj.weight").view(B, T, KV, D).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj.weight").view(B, T, KV, D).transpose(1, 2)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
        att = torch.softmax(q @ k.transpose(2, 3) * D ** -0.5 + causal, dim=-1, dtype=torch.float32)
        x = x + lin((att @ v).transpose(1, 2).reshape(B, T, H * D), p + "self_attn.o_proj.weight")
        h = rms(x, sd[p + "post_attention_layernorm.weight"])
        x = x + lin(F.silu(lin(h, p + "mlp.gate_proj.weight")) * lin(h, p + "mlp.up_proj.weight"), p + "mlp.down_proj.weight")
    x = rms(x, sd["model.norm.weight"])
    return x @ (sd["model.embed_tokens.weight"] if c["tie_word_embeddings"] else sd["lm_head.weight"]).t()


def check_llama_math(base: BaseModel, config: dict, tol=1e-4):
    """training/model.py's forward vs Llama's on the same weights; exits if they differ."""
    ids = torch.randint(0, config["vocab_size"], (2, 96), generator=torch.Generator().manual_seed(0))
    ours, _ = base(ids)
    diff = (llama_logits(hf_state_dict(base), config, ids) - ours).abs().max().item()
    print(f"Llama forward (config.json, Llama parameter names) vs training/model.py: max |logit diff| {diff:.2e}")
    if not diff < tol:
        raise SystemExit(f"the architecture does not match Llama's math (max logit diff {diff} >= {tol})")


def read_artifact(model_dir, name):
    """An artifact of a shard folder (manifest.json + sha256-checked shards), reassembled."""
    import hashlib
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    entry = manifest["files"][name]
    data = b"".join(open(os.path.join(model_dir, s["path"]), "rb").read() for s in entry["shards"])
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise SystemExit(f"{model_dir}: {name} does not match its sha256")
    return manifest, data


# The chat template of the API's /v1/chat/completions (src/worker/openai/chat-template.ts, renderChat):
# "Role: content" paragraphs, ending with "Assistant:"; a last assistant message is left open. <s> first,
# as the engine puts it before every prompt.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% set label = 'User' if m.role == 'user' else ('Assistant' if m.role == 'assistant' else 'System') %}"
    "{% if loop.last and m.role == 'assistant' %}{{ label }}:{% if m.content %} {{ m.content }}{% endif %}"
    "{% else %}{{ label }}: {{ m.content }}\n\n{% endif %}{% endfor %}"
    "{% if messages[-1].role != 'assistant' %}Assistant:{% endif %}"
)


def hf_config(cfg: ModelConfig, bos, eos):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn_hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "pretraining_tp": 1,
        "tie_word_embeddings": cfg.tie_embeddings,
        "initializer_range": 0.02,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": 0,
        "torch_dtype": "float32",
        "use_cache": True,
        "transformers.js_config": {"dtype": "q8", "kv_cache_dtype": "float32"},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="checkpoints/base/model.pt")
    ap.add_argument("--model-dir", default="model-shards/default",
                    help="the shipped model: its tokenizer and bos/eos ids are reused")
    ap.add_argument("--out", default="model-hf/default")
    args = ap.parse_args()

    st = torch.load(args.base, map_location="cpu")
    base = BaseModel(ModelConfig(**st["config"]))
    base.load_state_dict(st["model"])
    base.eval()
    manifest, tok_bytes = read_artifact(args.model_dir, "tokenizer")
    mc = manifest["config"]
    for k, v in (("vocab_size", base.cfg.vocab_size), ("d_model", base.cfg.d_model), ("n_layers", base.cfg.n_layers)):
        if mc[k] != v:
            raise SystemExit(f"{args.base} and {args.model_dir} differ in {k}: {v} vs {mc[k]}")
    if mc.get("kv_panel", PANEL) != PANEL:
        raise SystemExit(f"{args.model_dir} uses kv_panel {mc['kv_panel']}; this export sums panels of {PANEL}")
    bos, eos = mc["bos_id"], mc["eos_id"]
    stops = [eos] if eos == bos else [eos, bos]  # what the engine stops on (src/engine/engine.ts stopTokens)

    config = hf_config(base.cfg, bos, stops)
    with torch.no_grad():
        check_llama_math(base, config)
    os.makedirs(os.path.join(args.out, "onnx"), exist_ok=True)
    onnx_path = os.path.join(args.out, "onnx", "model_quantized.onnx")
    model = quantize(build_hf_decoder(base), "rowwise")
    save(model, onnx_path)

    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": stops, "pad_token_id": 0, "do_sample": False,
                   "max_length": base.cfg.max_seq_len}, f, indent=2)
        f.write("\n")

    tok = json.loads(tok_bytes)
    added = {t["id"]: t["content"] for t in tok["added_tokens"]}
    bos_piece = added[bos]
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos_piece, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos_piece, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos_piece, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos_piece: {"id": bos_piece, "ids": [bos], "tokens": [bos_piece]}},
    }
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": True, "add_eos_token": False,
                   "bos_token": bos_piece, "eos_token": added[eos], "unk_token": added.get(0, "<unk>"),
                   "pad_token": added.get(0, "<unk>"), "clean_up_tokenization_spaces": False,
                   "legacy": False, "model_max_length": base.cfg.max_seq_len,
                   "chat_template": CHAT_TEMPLATE}, f, indent=2)
        f.write("\n")
    sizes = {p: os.path.getsize(os.path.join(args.out, p)) for p in
             ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model_quantized.onnx")}
    print(f"wrote {args.out}: " + ", ".join(f"{p} ({b / 1e6:.2f} MB)" for p, b in sizes.items()))


if __name__ == "__main__":
    main()
