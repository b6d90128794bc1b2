"""Write `model-shards/<name>/`: manifest.json plus content-hashed shards of every artifact.

Shard size is 2,000,000 bytes: under the 2 MB Durable Object value limit (so a shard could be
cached in DO storage verbatim), small enough that R2 GETs run in parallel and a corrupt shard
costs one small re-fetch, and large enough that a 6 MB model is only a handful of requests.
Each shard and each reassembled file carry a sha256 that the loader checks before use.

  /usr/bin/python3 -m training.shard --name default

`<kind>_fused` (training/fuse_head.py) is written when <onnx>/<kind>_fused.onnx exists; with --only, list
a head before its fused graph (`--only ctc_head,ctc_fused`): the entry records the head it fuses.

The manifest's second base file `base_webgpu` (the WebGPU variant, training/export_webgpu.py) is written
when data/onnx/base.webgpu.onnx exists. Without the held-out data (data/tokens/val.bin,
data/corpus/val.txt) the held-out metrics are carried over from the existing manifest.
"""
import argparse, datetime, glob, hashlib, json, math, os, time

import numpy as np
import torch

from training.common import load_tokens
from training.progress import bar, elapsed, summary
from training.ctc_tokenizer import BOS_ID, EOS_ID

SHARD_BYTES = 2_000_000


def sha256(b):
    return hashlib.sha256(b).hexdigest()


_meter = None  # the step's progress bar (bytes written), while main runs


def start_meter(paths):
    """A progress bar over the bytes of the files this run may shard (those that exist)."""
    global _meter
    _meter = bar(total=sum(os.path.getsize(p) for p in paths if os.path.exists(p)), desc="shard", unit="B",
                 unit_scale=True, unit_divisor=1024)
    return _meter


def write_file(out_dir, stem, data, config=None):
    shards = []
    for i in range(max(1, math.ceil(len(data) / SHARD_BYTES))):
        part = data[i * SHARD_BYTES:(i + 1) * SHARD_BYTES]
        digest = sha256(part)
        path = f"{stem}-{i:03d}-{digest[:12]}.bin"
        with open(os.path.join(out_dir, path), "wb") as f:
            f.write(part)
        shards.append({"path": path, "bytes": len(part), "sha256": digest})
        if _meter is not None:
            _meter.update(len(part))
    entry = {"bytes": len(data), "sha256": sha256(data), "shards": shards}
    if config:
        entry["config"] = config
    return entry


def dynamic_matmuls(path):
    import onnx
    return any(n.op_type == "DynamicQuantizeMatMul" for n in onnx.load(path).graph.node)


def head_entry(out_dir, onnx_dir, export, kind, weight_exponent=None):
    """The manifest entry of `<kind>_head` from <onnx_dir>/<kind>_head.int8.onnx (its shards written), or None.
    weight_exponent: the head's measured calibration (bench/experiments/head-calibration.ts); the
    engine's Medusa drafter weighs a path by its score to this power."""
    path = os.path.join(onnx_dir, f"{kind}_head.int8.onnx")
    if not (os.path.exists(path) and f"{kind}_head" in export):
        return None
    hc = export[f"{kind}_head"]["config"]
    cfg = {"k": hc["k"], "n_heads": hc["n_heads"]}
    # the head's read-out classes: its own trained shortlist, or the whole vocabulary
    shortlist = export[f"{kind}_head"].get("shortlist")
    classes = len(shortlist) if shortlist else hc["vocab_size"]
    if kind == "ctc":
        cfg.update(slots=hc["slots"], vocab_size=classes, blank_id=classes)
    elif shortlist:
        cfg.update(vocab_size=classes)
    if shortlist:
        cfg["shortlist"] = shortlist
    # a head runs several positions per pass: row-wise int8 keeps a position's output independent
    # of how many others share the pass (training/quantize.py); the MatMuls that see the newest row
    # only may be dynamic (quantize.py --dynamic-weights auto)
    cfg["quantization"] = "int8-rowwise"
    if dynamic_matmuls(path):
        cfg["quantization"] = "int8-rowwise+dynamic-newest-row"
    cfg["train_summary"] = export[f"{kind}_head"]["summary"]
    if weight_exponent is not None:
        cfg["weight_exponent"] = weight_exponent
    return write_file(out_dir, f"{kind}_head", open(path, "rb").read(), cfg)


def fused_entry(out_dir, onnx_dir, kind, files):
    """The manifest entry of `<kind>_fused` (training/fuse_head.py: the base graph with a draft head in its
    verify pass) from <onnx_dir>/<kind>_fused.onnx, or None. It records the base and head files it was
    built from: the engine uses it only while they are the manifest's (its logits are the base graph's)."""
    path = os.path.join(onnx_dir, f"{kind}_fused.onnx")
    if not (os.path.exists(path) and "base" in files and f"{kind}_head" in files):
        return None
    cfg = {"head": f"{kind}_head", "base_sha256": files["base"]["sha256"],
           "head_sha256": files[f"{kind}_head"]["sha256"]}
    return write_file(out_dir, f"{kind}_fused", open(path, "rb").read(), cfg)


def replace_heads(out_dir, onnx_dir, names, exponents):
    """Rewrite only the named head files of an existing manifest (their old shards removed, new ones
    written); the other entries, their shards and the manifest's other fields are kept byte for byte."""
    path = os.path.join(out_dir, "manifest.json")
    manifest = json.load(open(path))
    export = json.load(open(os.path.join(onnx_dir, "export.json")))
    meter = start_meter([os.path.join(onnx_dir, f"{n}.onnx" if n.endswith("_fused") else f"{n}.int8.onnx") for n in names])
    for name in names:
        old = manifest["files"].get(name)
        if name.endswith("_fused"):
            kind = name.removesuffix("_fused")
            entry = fused_entry(out_dir, onnx_dir, kind, manifest["files"])
        else:
            kind = name.removesuffix("_head")
            entry = head_entry(out_dir, onnx_dir, export, kind, exponents.get(kind))
        if entry is None:
            raise SystemExit(f"no {name} in {onnx_dir} (<kind>_head.int8.onnx with its export.json entry, or "
                             f"<kind>_fused.onnx beside the manifest's {kind}_head)")
        keep = {s["path"] for s in entry["shards"]}
        for s in (old or {}).get("shards", []):
            if s["path"] not in keep and os.path.exists(os.path.join(out_dir, s["path"])):
                os.remove(os.path.join(out_dir, s["path"]))
        manifest["files"][name] = entry
        meter.write(f"{name}: {entry['bytes'] / 1e6:.2f} MB in {len(entry['shards'])} shards (sha256 {entry['sha256'][:12]})")
    meter.close()
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)


@torch.no_grad()
def heldout_metrics(base_ckpt, data_dir, corpus_dir, windows=256, seq=512):
    """Held-out loss of the shipped (row-wise int8) model and of the fp32 weights."""
    from training.reference import load_quantized
    from training.model import BaseModel, ModelConfig
    import torch.nn.functional as F
    val = load_tokens(os.path.join(data_dir, "val.bin"))
    rng = np.random.default_rng(1234)
    starts = rng.integers(0, len(val) - seq - 1, size=windows)
    x = torch.from_numpy(np.stack([val[s:s + seq + 1] for s in starts]).astype(np.int64))
    q = load_quantized(base_ckpt).base
    st = torch.load(base_ckpt, map_location="cpu")
    f = BaseModel(ModelConfig(**st["config"]))
    f.load_state_dict(st["model"])
    f.eval()
    out = {}
    bytes_per_token = os.path.getsize(os.path.join(corpus_dir, "val.txt")) / len(val)
    for name, m in (("int8", q), ("fp32", f)):
        # in batches of 16 windows (the logits of all 256 at once are 2 GB for a 4096-token vocabulary)
        total = 0.0
        with bar(total=windows, desc=f"held-out loss, {name}", unit="window") as meter:
            for i in range(0, windows, 16):
                xb = x[i:i + 16]
                total += F.cross_entropy(m(xb[:, :-1])[0].reshape(-1, m.cfg.vocab_size), xb[:, 1:].reshape(-1),
                                         reduction="sum").item()
                meter.update(len(xb))
        loss = total / (windows * seq)
        out[f"heldout_nats_per_token_{name}"] = round(loss, 4)
        out[f"heldout_bits_per_byte_{name}"] = round(loss / math.log(2) / bytes_per_token, 4)
    out["bytes_per_token"] = round(bytes_per_token, 3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="default")
    ap.add_argument("--dir", default=None, help="the model folder (default model-shards/<name>)")
    ap.add_argument("--onnx", default="data/onnx")
    ap.add_argument("--tokenizer", default="data/tokenizer/tokenizer.json")
    ap.add_argument("--base-checkpoint", default="checkpoints/base/model.pt")
    ap.add_argument("--data", default="data/tokens")
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--only", default="", help="comma-separated head files (e.g. ctc_head) to (re)write into the "
                                                "existing manifest; every other entry and its shards stay as they are")
    ap.add_argument("--weight-exponent", default="", help="KIND=G,...: a head's calibration, measured by "
                    "bench/experiments/head-calibration.ts (the engine's Medusa drafter weighs a path by score^G)")
    args = ap.parse_args()
    exponents = {k: float(g) for k, g in (kv.split("=") for kv in args.weight_exponent.split(",") if kv)}
    out_dir = args.dir or os.path.join("model-shards", args.name)
    os.makedirs(out_dir, exist_ok=True)
    if args.only:
        return replace_heads(out_dir, args.onnx, [k for k in args.only.split(",") if k], exponents)
    old_manifest = os.path.join(out_dir, "manifest.json")
    old_metrics = json.load(open(old_manifest)).get("metrics") if os.path.exists(old_manifest) else None
    for old in glob.glob(os.path.join(out_dir, "*.bin")):
        os.remove(old)
    export = json.load(open(os.path.join(args.onnx, "export.json")))
    c = export["config"]
    t0 = time.time()
    kinds = ("ctc", "medusa")
    meter = start_meter([os.path.join(args.onnx, f) for f in ["base.rowwise.onnx", "base.webgpu.onnx"] +
                         [f"{k}_head.int8.onnx" for k in kinds] + [f"{k}_fused.onnx" for k in kinds]] +
                        [args.tokenizer])
    files = {
        "base": write_file(out_dir, "base", open(os.path.join(args.onnx, "base.rowwise.onnx"), "rb").read(),
                           {"quantization": "int8-rowwise", "kv_interface": 2}),
        "tokenizer": write_file(out_dir, "tokenizer", open(args.tokenizer, "rb").read()),
    }
    for kind in kinds:
        entry = head_entry(out_dir, args.onnx, export, kind, exponents.get(kind))
        if entry:
            files[f"{kind}_head"] = entry
    for kind in kinds:
        entry = fused_entry(out_dir, args.onnx, kind, files)
        if entry:
            files[f"{kind}_fused"] = entry
    webgpu = os.path.join(args.onnx, "base.webgpu.onnx")
    if os.path.exists(webgpu):
        # the base model for onnxruntime-web's WebGPU provider (no MatMulInteger kernel there): the fp32
        # graph with fp16 weights; the browser engine loads it instead of `base` when it runs on WebGPU
        files["base_webgpu"] = write_file(out_dir, "base_webgpu", open(webgpu, "rb").read(),
                                          {"quantization": "fp16-weights", "kv_interface": 2, "execution_provider": "webgpu"})
    meter.total = meter.n  # files that exist but were not written (no export.json entry) do not count
    meter.close()
    have_val = all(os.path.exists(p) for p in (os.path.join(args.data, "val.bin"), os.path.join(args.corpus, "val.txt")))
    if have_val or not old_metrics:
        metrics = heldout_metrics(args.base_checkpoint, args.data, args.corpus)
    else:
        print(f"no held-out data in {args.data} / {args.corpus}: held-out metrics kept from the previous manifest")
        metrics = {k: v for k, v in old_metrics.items() if k.startswith("heldout_") or k == "bytes_per_token"}
    metrics.update({"train_tokens": export["train"]["tokens"], "train_steps": export["train"]["step"],
                    "train_minutes": round(export["train"]["elapsed"] / 60, 2)})
    manifest = {
        "format": 1,
        "name": args.name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": {"vocab_size": c["vocab_size"], "d_model": c["d_model"], "n_layers": c["n_layers"],
                   "n_heads": c["n_heads"], "head_dim": c["d_model"] // c["n_heads"], "ffn_hidden": c["ffn_hidden"],
                   "max_seq_len": c["max_seq_len"], "rope_theta": c["rope_theta"],
                   # the base graph's KV-cache panel (export_onnx.py panel_attention)
                   "kv_panel": export["kv_panel"],
                   # the tokenizer's ids (train_tokenizer.py); the engine stops on both: documents are
                   # separated by <s> in the training corpus, so generating <s> ends a document too
                   "bos_id": BOS_ID, "eos_id": EOS_ID},
        "files": files,
        "metrics": metrics,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    total = sum(e["bytes"] for e in files.values())
    print(f"wrote {out_dir}: {sum(len(e['shards']) for e in files.values())} shards, {total / 1e6:.2f} MB")
    print(json.dumps(metrics, indent=2))
    summary(f"shard: {len(files)} files, {sum(len(e['shards']) for e in files.values())} shards, {total / 1e6:.2f} MB "
            f"-> {out_dir} ({elapsed(t0)})")


if __name__ == "__main__":
    main()
