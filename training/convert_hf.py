"""Convert a Hugging Face Llama checkpoint into this project's model: export, quantization, shards.

  /usr/bin/python3 -m training.convert_hf <hf_dir> --name <name> [--out model-shards/<name>] [--fp32]
                                          [--max-seq-len 512] [--tokenizer <tokenizer.json>]

reads  <hf_dir>/config.json, model.safetensors (or model.safetensors.index.json and its parts),
       tokenizer.json (or --tokenizer), generation_config.json when present (bos / eos ids)
writes checkpoints/<name>/model.pt  the weights in training/model.py's layout, for training.distill,
                                    training.train_heads and training.export_onnx (the draft heads)
       data/onnx-<name>/            base.onnx (fp32, export_onnx.build_base: KV interface 2),
                                    base.rowwise.onnx (training/quantize.py, row-wise int8), export.json
       <out>/                       manifest.json + sha256-named shards (training/shard.py's format):
                                    `base` (int8 row-wise; fp32 with --fp32) and `tokenizer`

What is read from config.json: hidden_size, intermediate_size, num_hidden_layers,
num_attention_heads, num_key_value_heads, head_dim, vocab_size, rms_norm_eps, rope_theta,
max_position_embeddings, tie_word_embeddings (LlamaConfig's defaults where a key is absent).
Refused with a message: another model_type, rope_scaling, attention or MLP biases, an activation
other than silu, head_dim * num_attention_heads != hidden_size.

Grouped-query attention: the graph and the engine's cache hold one K/V head per query head, so each
K/V head's projection rows are repeated for the query heads that share it (transformers' repeat_kv),
which computes the same numbers; the cache is num_attention_heads / num_key_value_heads times larger
than the checkpoint needs (the converter prints it).

Untied embeddings: the LM head becomes a second [d,V] table in the graph (`lm_head_t`, int8 like
the rest); a checkpoint whose lm_head.weight equals its embedding is converted as tied.

Before anything is written, the converted weights run through training/model.py's forward and
through LlamaForCausalLM's forward written from transformers' definition (training/export_hf.py,
llama_logits, over the checkpoint's own tensors and config); the logits must agree to 1e-4 of their
magnitude (printed).
"""
import argparse, json, os, time

import numpy as np
import torch

from training.export_hf import llama_logits
from training.export_onnx import PANEL, build_base
from training.model import BaseModel, ModelConfig
from training.onnx_graph import save
from training.progress import bar, elapsed, summary
from training.quantize import quantize
from training.safetensors import load_checkpoint_weights
from training.shard import write_file


class Refused(SystemExit):
    pass


def llama_settings(c, max_seq_len):
    """config.json -> (ModelConfig, the config llama_logits reads, notes). Refuses what the graph cannot run."""
    archs = c.get("architectures") or []
    if c.get("model_type") != "llama" and "LlamaForCausalLM" not in archs:
        raise Refused(f"model_type {c.get('model_type')!r} ({', '.join(archs) or 'no architectures'}): "
                      "only Llama-architecture checkpoints (model_type llama) convert")
    if c.get("rope_scaling") not in (None, {}) and (c["rope_scaling"].get("rope_type") or c["rope_scaling"].get("type")) != "default":
        raise Refused(f"rope_scaling {c['rope_scaling']}: only plain rotary positions (rope_theta) convert")
    for key in ("attention_bias", "mlp_bias"):
        if c.get(key):
            raise Refused(f"{key} is true: the graph has no biases")
    if c.get("hidden_act", "silu") != "silu":
        raise Refused(f"hidden_act {c['hidden_act']!r}: the graph's MLP is SwiGLU (silu)")
    d, H = c["hidden_size"], c["num_attention_heads"]
    KV = c.get("num_key_value_heads") or H
    D = c.get("head_dim") or d // H
    if D * H != d:
        raise Refused(f"head_dim {D} x {H} heads != hidden_size {d}: the graph's heads split the hidden state")
    if H % KV:
        raise Refused(f"num_key_value_heads {KV} does not divide num_attention_heads {H}")
    ctx = min(max_seq_len, c.get("max_position_embeddings", 2048))
    if ctx % PANEL:
        raise Refused(f"context {ctx} is not a multiple of the cache panel ({PANEL}); pass --max-seq-len")
    cfg = ModelConfig(vocab_size=c["vocab_size"], d_model=d, n_layers=c["num_hidden_layers"], n_heads=H,
                      ffn_hidden=c["intermediate_size"], max_seq_len=ctx, rope_theta=float(c.get("rope_theta", 10000.0)),
                      norm_eps=float(c.get("rms_norm_eps", 1e-6)), tie_embeddings=bool(c.get("tie_word_embeddings", False)))
    ref = {"num_attention_heads": H, "num_key_value_heads": KV, "head_dim": D, "num_hidden_layers": cfg.n_layers,
           "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.norm_eps, "tie_word_embeddings": cfg.tie_embeddings,
           "vocab_size": cfg.vocab_size}
    notes = []
    if KV != H:
        notes.append(f"grouped-query attention: {KV} K/V heads repeated to {H} (exact; the KV cache is {H // KV}x "
                     f"what the checkpoint needs)")
    return cfg, ref, notes


def base_state(w, cfg, ref):
    """Checkpoint tensors under Llama's names -> training/model.py's BaseModel state dict (inverse of
    export_hf.hf_state_dict; K/V rows repeated for grouped-query attention)."""
    t = lambda name: torch.from_numpy(np.array(w[name], dtype=np.float32))
    H, KV, D = ref["num_attention_heads"], ref["num_key_value_heads"], ref["head_dim"]
    rep = lambda x: x.view(KV, D, -1).repeat_interleave(H // KV, dim=0).reshape(H * D, -1)
    sd = {"embed.weight": t("model.embed_tokens.weight"), "norm.weight": t("model.norm.weight")}
    used = {"model.embed_tokens.weight", "model.norm.weight"}
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}."
        names = {k: p + k for k in ("input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
                                    "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")}
        missing = [n for n in names.values() if n not in w]
        if missing:
            raise Refused(f"the checkpoint lacks {', '.join(missing)}")
        used |= set(names.values())
        g = lambda k: t(names[k])
        q = f"blocks.{i}."
        sd.update({q + "attn_norm.weight": g("input_layernorm.weight"), q + "mlp_norm.weight": g("post_attention_layernorm.weight"),
                   q + "attn.wqkv.weight": torch.cat([g("self_attn.q_proj.weight"), rep(g("self_attn.k_proj.weight")),
                                                      rep(g("self_attn.v_proj.weight"))]),
                   q + "attn.wo.weight": g("self_attn.o_proj.weight"),
                   q + "mlp.w_gate_up.weight": torch.cat([g("mlp.gate_proj.weight"), g("mlp.up_proj.weight")]),
                   q + "mlp.w_down.weight": g("mlp.down_proj.weight")})
    if not cfg.tie_embeddings:
        if "lm_head.weight" not in w:
            raise Refused("tie_word_embeddings is false but the checkpoint has no lm_head.weight")
        sd["output.weight"] = t("lm_head.weight")
    used.add("lm_head.weight")
    # tensors nothing reads would mean a different architecture; old checkpoints carry rotary buffers
    extra = [n for n in w if n not in used and not n.endswith("rotary_emb.inv_freq")]
    if extra:
        raise Refused(f"tensors the Llama mapping does not use: {', '.join(sorted(extra)[:8])}")
    return sd


def tokenizer_max_id(tok):
    m = tok.get("model", {})
    vocab = m.get("vocab", {})
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))  # BPE/WordPiece vs Unigram
    ids += [a["id"] for a in tok.get("added_tokens", [])]
    return max(ids, default=-1)


def special_ids(hf_dir, c, args):
    """bos / eos: --bos-id / --eos-id, else generation_config.json, else config.json."""
    gen_path = os.path.join(hf_dir, "generation_config.json")
    gen = json.load(open(gen_path)) if os.path.exists(gen_path) else {}
    out = {}
    for key, override in (("bos_token_id", args.bos_id), ("eos_token_id", args.eos_id)):
        v = override if override is not None else gen.get(key, c.get(key))
        if isinstance(v, list):  # the engine stops at one eos id (and at bos)
            print(f"{key} lists {v}: the engine uses the first, {v[0]}")
            v = v[0]
        if v is None:
            raise Refused(f"no {key} in config.json or generation_config.json: pass --{key[:3]}-id")
        out[key] = int(v)
    return out["bos_token_id"], out["eos_token_id"]


@torch.no_grad()
def check(base, w, ref, length=64):
    """Max |logit difference| between training/model.py's forward and Llama's over the checkpoint's tensors."""
    ids = torch.randint(0, ref["vocab_size"], (2, min(length, base.cfg.max_seq_len)), generator=torch.Generator().manual_seed(0))
    sd = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in w.items()}
    want = llama_logits(sd, ref, ids)
    got, _ = base(ids)
    diff = (got - want).abs().max().item()
    scale = max(1.0, want.abs().max().item())
    print(f"training/model.py vs Llama's forward (the checkpoint's tensors): max |logit diff| {diff:.2e} "
          f"(logits up to {scale:.2f})")
    if not diff <= 1e-4 * scale:
        raise Refused(f"the converted weights do not compute Llama's logits (max diff {diff} > {1e-4 * scale:.2e})")
    return diff


def write_folder(out, name, base_bytes, tok_bytes, cfg, bos, eos, quantization, source, params):
    """<out>/manifest.json + shards (training/shard.py's format); the previous manifest's shards go first."""
    os.makedirs(out, exist_ok=True)
    old = os.path.join(out, "manifest.json")
    if os.path.exists(old):
        for entry in json.load(open(old)).get("files", {}).values():
            for s in entry.get("shards", []):
                p = os.path.join(out, s["path"])
                if os.path.exists(p):
                    os.remove(p)
    files = {"base": write_file(out, "base", base_bytes, {"quantization": quantization, "kv_interface": 2}),
             "tokenizer": write_file(out, "tokenizer", tok_bytes)}
    manifest = {
        "format": 1,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "config": {"vocab_size": cfg.vocab_size, "d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
                   "head_dim": cfg.head_dim, "ffn_hidden": cfg.ffn_hidden, "max_seq_len": cfg.max_seq_len,
                   "rope_theta": cfg.rope_theta, "kv_panel": PANEL, "bos_id": bos, "eos_id": eos},
        "files": files,
        "metrics": {"parameters": params},
        "source": source,
    }
    with open(old, "w") as f:
        json.dump(manifest, f, indent=2)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir")
    ap.add_argument("--name", default=None, help="the model's name (default: the folder's name)")
    ap.add_argument("--out", default=None, help="model folder (default model-shards/<name>)")
    ap.add_argument("--checkpoint", default=None, help="default checkpoints/<name>/model.pt")
    ap.add_argument("--onnx", default=None, help="ONNX folder (default data/onnx-<name>)")
    ap.add_argument("--fp32", action="store_true", help="ship the fp32 graph (no quantization)")
    ap.add_argument("--max-seq-len", type=int, default=512,
                    help="context of the converted model (at most max_position_embeddings; a multiple of 32)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer.json (default <hf_dir>/tokenizer.json)")
    ap.add_argument("--bos-id", type=int, default=None)
    ap.add_argument("--eos-id", type=int, default=None)
    args = ap.parse_args()
    t0 = time.time()
    hf = args.hf_dir
    name = args.name or os.path.basename(os.path.normpath(hf))
    out = args.out or os.path.join("model-shards", name)
    ckpt = args.checkpoint or os.path.join("checkpoints", name, "model.pt")
    onnx_dir = args.onnx or os.path.join("data", f"onnx-{name}")

    c = json.load(open(os.path.join(hf, "config.json")))
    cfg, ref, notes = llama_settings(c, args.max_seq_len)
    tok_path = args.tokenizer or os.path.join(hf, "tokenizer.json")
    if not os.path.exists(tok_path):
        raise Refused(f"no {tok_path}: the engine reads a Hugging Face tokenizer.json (pass --tokenizer)")
    tok_bytes = open(tok_path, "rb").read()
    top = tokenizer_max_id(json.loads(tok_bytes))
    if top >= cfg.vocab_size:
        raise Refused(f"{tok_path} has token id {top}, outside the model's vocab_size {cfg.vocab_size}")
    bos, eos = special_ids(hf, c, args)
    for n in notes:
        print(n)

    steps = bar(total=5, desc="convert", unit="step")
    steps.set_postfix_str("read weights")
    w = load_checkpoint_weights(hf)
    if "model.embed_tokens.weight" not in w and "embed_tokens.weight" in w:  # saved from LlamaModel
        w = {("model." + k if not k.startswith("lm_head") else k): v for k, v in w.items()}
    if not cfg.tie_embeddings and "lm_head.weight" in w and np.array_equal(w["lm_head.weight"], w["model.embed_tokens.weight"]):
        print("lm_head.weight equals the embedding: converted as tied")
        cfg.tie_embeddings = ref["tie_word_embeddings"] = True
    base = BaseModel(cfg)
    base.load_state_dict(base_state(w, cfg, ref))
    base.eval()
    # the checkpoint's own count (before K/V heads are repeated; a tied LM head counted once)
    params = sum(int(a.size) for k, a in w.items() if not k.endswith("inv_freq") and not (cfg.tie_embeddings and k == "lm_head.weight"))
    steps.update()

    steps.set_postfix_str("check against Llama's forward")
    diff = check(base, w, ref)
    steps.update()
    del w

    os.makedirs(os.path.dirname(ckpt) or ".", exist_ok=True)
    torch.save({"config": cfg.to_dict(), "model": base.state_dict(), "step": 0, "tokens": 0, "elapsed": 0.0,
                "source": os.path.abspath(hf)}, ckpt)
    steps.set_postfix_str("export")
    os.makedirs(onnx_dir, exist_ok=True)
    graph = build_base(base, PANEL)
    save(graph, os.path.join(onnx_dir, "base.onnx"))
    with open(os.path.join(onnx_dir, "export.json"), "w") as f:
        json.dump({"config": cfg.to_dict(), "kv_panel": PANEL, "train": {"step": 0, "tokens": 0, "elapsed": 0.0}}, f, indent=2)
    steps.update()
    steps.set_postfix_str("quantize")
    if args.fp32:
        ship, quantization = os.path.join(onnx_dir, "base.onnx"), "fp32"
    else:
        ship, quantization = os.path.join(onnx_dir, "base.rowwise.onnx"), "int8-rowwise"
        save(quantize(graph, "rowwise", progress=True), ship)
    steps.update()
    steps.set_postfix_str("shard")
    source = {"format": "huggingface-llama", "dir": os.path.basename(os.path.abspath(hf)),  # (no local path in a shipped manifest)
              "tie_word_embeddings": cfg.tie_embeddings, "num_key_value_heads": ref["num_key_value_heads"],
              "max_position_embeddings": c.get("max_position_embeddings"), "check_max_logit_diff": diff}
    files = write_folder(out, name, open(ship, "rb").read(), tok_bytes, cfg, bos, eos, quantization, source, params)
    steps.update()
    steps.close()
    summary(f"converted {hf} -> {out}: {params / 1e6:.1f}M parameters, {'tied' if cfg.tie_embeddings else 'untied'}, "
            f"{quantization}, base {files['base']['bytes'] / 1e6:.2f} MB + tokenizer {files['tokenizer']['bytes'] / 1e6:.2f} MB "
            f"in {sum(len(e['shards']) for e in files.values())} shards; checkpoint {ckpt}; {elapsed(t0)}")


if __name__ == "__main__":
    main()
