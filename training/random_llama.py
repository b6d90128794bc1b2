"""Write a randomly initialised Llama checkpoint in the Hugging Face layout (config.json,
model.safetensors, generation_config.json, tokenizer.json): the input of training/convert_hf.py in
its tests, and for measuring what model sizes fit in memory (random weights weigh what trained
ones do).

  /usr/bin/python3 -m training.random_llama <out_dir> [--hidden 64 --layers 2 --heads 4 --kv-heads 2
        --ffn 176 --vocab 4096 --untied --dtype f32|f16|bf16 --seed 0]

The weights are scaled so that logits are far apart (N(0, 1/fan_in) projections, N(0, 1) embedding,
norm weights near 1): greedy decoding then has clear argmaxes, which a test comparing two runtimes
needs. The tokenizer is the default model's (model-shards/default, 4096 pieces); a larger --vocab
pads it with placeholder pieces so that every id decodes.
"""
import argparse, json, os

import numpy as np

from training.safetensors import write_safetensors


def default_tokenizer(vocab):
    from training.export_hf import read_artifact
    _, data = read_artifact(os.path.join(os.path.dirname(__file__), "..", "model-shards", "default"), "tokenizer")
    tok = json.loads(data)
    pieces = tok["model"]["vocab"]
    n = max(list(pieces.values()) + [a["id"] for a in tok["added_tokens"]]) + 1
    if vocab < n:
        raise SystemExit(f"--vocab {vocab} is smaller than the tokenizer's {n} pieces")
    for i in range(n, vocab):
        pieces[f"<extra_{i}>"] = i
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=None, help="default: --heads (no grouping)")
    ap.add_argument("--ffn", type=int, default=176)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--untied", action="store_true", help="a separate lm_head.weight")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d, L, H, V, f = args.hidden, args.layers, args.heads, args.vocab, args.ffn
    KV = args.kv_heads or H
    D = d // H
    rng = np.random.default_rng(args.seed)
    lin = lambda n_out, n_in: (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    norm = lambda: (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)
    w = {"model.embed_tokens.weight": rng.standard_normal((V, d)).astype(np.float32), "model.norm.weight": norm()}
    for i in range(L):
        p = f"model.layers.{i}."
        w.update({p + "input_layernorm.weight": norm(), p + "post_attention_layernorm.weight": norm(),
                  p + "self_attn.q_proj.weight": lin(H * D, d), p + "self_attn.k_proj.weight": lin(KV * D, d),
                  p + "self_attn.v_proj.weight": lin(KV * D, d), p + "self_attn.o_proj.weight": lin(d, H * D),
                  p + "mlp.gate_proj.weight": lin(f, d), p + "mlp.up_proj.weight": lin(f, d),
                  p + "mlp.down_proj.weight": lin(d, f)})
    if args.untied:
        w["lm_head.weight"] = lin(V, d) * np.float32(np.sqrt(d))  # logits on the embedding's scale
    bf16 = set()
    if args.dtype == "f16":
        w = {k: v.astype(np.float16) for k, v in w.items()}
    elif args.dtype == "bf16":
        bf16 = set(w)
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "model.safetensors"), w, {"format": "pt"}, bf16=bf16)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": d,
        "intermediate_size": f, "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
        "head_dim": D, "hidden_act": "silu", "max_position_embeddings": args.max_pos, "rms_norm_eps": args.rms_eps,
        "rope_theta": args.rope_theta, "rope_scaling": None, "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": not args.untied, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[args.dtype],
    }
    with open(os.path.join(args.out, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as fh:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, fh, indent=2)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as fh:
        json.dump(default_tokenizer(V), fh, ensure_ascii=False)
    n = sum(v.size for v in w.values())
    print(f"wrote {args.out}: {n / 1e6:.2f}M parameters ({'untied' if args.untied else 'tied'}, {args.dtype})")


if __name__ == "__main__":
    main()
