"""Quantize an fp32 ONNX export to int8 weights (symmetric, one scale per output column).

Methods (chosen by measurement; see docs/RESULTS.md "Quantization"):
  rowwise  (default) activations are quantized per row (per token) inside the graph:
           s = max|a_row|/127, q = round(a/s) + 128 (uint8, one QuantizeLinear), MatMulInteger(q, W_int8, zp=128) -> int32,
           y = (float(acc) * s) * w_scale. A token's result never depends on the other tokens in the
           batch, so verifying a tree gives the same numbers as decoding token by token: the
           property that lossless speculation rests on.
  dynamic  ORT's DynamicQuantizeMatMul: one activation scale for the whole [S,K] input, so a
           token's logits shift with whatever else is in the batch. Smaller graph, not row-exact.
The tied [d,V] table is stored once in int8 and serves both the embedding Gather and the LM head.

  /usr/bin/python3 -m training.quantize data/onnx/base.onnx data/onnx/base.int8.onnx
"""
import argparse, os, time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.progress import bar, elapsed, summary

MIN_ELEMENTS = 4096  # tiny matrices (the blank logit) stay fp32


def quantize_weight(w):
    """w [K,N] fp32 -> int8 [K,N], scale [N] (symmetric per output column)."""
    amax = np.abs(w).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale


def quantize(model, method, pow2=False, dynamic=(), progress=False):
    """dynamic: weight names whose MatMuls use DynamicQuantizeMatMul even when method is rowwise
    (where the activation has one row, or rows that are always computed together, row-exactness
    buys nothing and the row-wise pattern's six extra ops per MatMul cost time). progress: a bar over
    the weight matrices."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    targets = {}
    for n in g.node:
        # MatMul weights, and [d,V] tables looked up column-wise (the embedding)
        is_table = n.op_type == "Gather" and n.input[0] in inits and any(a.name == "axis" and a.i == 1 for a in n.attribute)
        name = n.input[1] if n.op_type == "MatMul" else n.input[0] if is_table else None
        if name in inits:
            w = numpy_helper.to_array(inits[name])
            if w.ndim == 2 and w.size >= MIN_ELEMENTS:
                targets[name] = w
    new_inits, quant = [], {}
    for name, w in (bar(targets.items(), total=len(targets), desc="quantize", unit="matrix") if progress else targets.items()):
        q, s = quantize_weight(w)
        quant[name] = (name + "_q", name + "_scale")
        new_inits += [numpy_helper.from_array(q, name + "_q"), numpy_helper.from_array(s, name + "_scale")]
    consts = [numpy_helper.from_array(np.array(127.0, np.float32), "q_127"),
              numpy_helper.from_array(np.array(128.0, np.float32), "q_128"),
              numpy_helper.from_array(np.array(1e-12, np.float32), "q_tiny"),
              numpy_helper.from_array(np.array(128, np.uint8), "q_zp"),
              numpy_helper.from_array(np.array(1.0, np.float32), "q_one"),
              numpy_helper.from_array(np.array(np.log(2.0), np.float32), "q_ln2"),
              numpy_helper.from_array(np.array(2.0, np.float32), "q_two")]
    nodes, row_q = [], {}  # row_q: activation name -> (quantized uint8, row scale), shared by consumers

    def mk(op, inputs, out, **attrs):
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in quant:
            a, (wq, ws), y = n.input[0], quant[n.input[1]], n.output[0]
            if method == "dynamic" or n.input[1] in dynamic:
                nodes.append(helper.make_node("DynamicQuantizeMatMul", [a, wq, ws], [y], domain="com.microsoft"))
                continue
            if a not in row_q:
                p = a + "_rq"
                amax = mk("ReduceMax", [mk("Abs", [a], p + "_abs")], p + "_amax", axes=[-1], keepdims=1)
                s = mk("Div", [mk("Max", [amax, "q_tiny"], p + "_amax_c"), "q_127"], p + "_scale_raw")
                if pow2:
                    # Round the scale up to a power of two: x/s is then exact, and an ulp of noise
                    # in max|a_row| almost never changes s (it only could at a power of two).
                    e = mk("Ceil", [mk("Div", [mk("Log", [s], p + "_ln"), "q_ln2"], p + "_log2")], p + "_exp")
                    s = mk("Pow", ["q_two", e], p + "_scale")
                # QuantizeLinear(x, 1, 128) = saturate(round_half_even(x) + 128) as uint8: the same
                # bits as Cast(Round(x) + 128) for |x| <= 127, in one op instead of three.
                qa = mk("QuantizeLinear", [mk("Div", [a, s], p + "_div"), "q_one", "q_zp"], p + "_u8")
                row_q[a] = (qa, s)
            qa, s = row_q[a]
            acc = mk("MatMulInteger", [qa, wq, "q_zp"], y + "_acc")
            f = mk("Cast", [acc], y + "_accf", to=TensorProto.FLOAT)
            mk("Mul", [mk("Mul", [f, s], y + "_rows"), ws], y)
        elif n.op_type == "Gather" and n.input[0] in quant:
            # Embedding lookup in the shared table: columns of W_q times their column scales.
            (wq, ws), ids, y = quant[n.input[0]], n.input[1], n.output[0]
            cols = mk("Cast", [mk("Gather", [wq, ids], y + "_q", axis=1)], y + "_f", to=TensorProto.FLOAT)
            mk("Mul", [cols, mk("Gather", [ws, ids], y + "_s", axis=0)], y)
        else:
            nodes.append(n)
    used = {name for n in nodes for name in n.input}
    keep = [i for i in list(g.initializer) + new_inits + consts if i.name in used]  # no dead weights
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(keep)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--method", choices=["rowwise", "dynamic"], default="rowwise")
    ap.add_argument("--pow2-scales", action="store_true", help="row scales rounded up to powers of two")
    ap.add_argument("--dynamic-weights", default="",
                    help="comma-separated weight names quantized dynamically under --method rowwise "
                         "(`auto`: the names an export lists in the graph's metadata `dynamic_weights`)")
    args = ap.parse_args()
    src = onnx.load(args.src)
    dynamic = set(filter(None, args.dynamic_weights.split(",")))
    if "auto" in dynamic:
        meta = {p.key: p.value for p in src.metadata_props}
        dynamic = (dynamic - {"auto"}) | set(filter(None, meta.get("dynamic_weights", "").split(",")))
    t0 = time.time()
    model = quantize(src, args.method, args.pow2_scales, dynamic, progress=True)
    onnx.checker.check_model(model)
    onnx.save(model, args.dst)
    summary(f"quantize: {args.src} ({os.path.getsize(args.src) / 1e6:.1f} MB) -> {args.dst} "
            f"({os.path.getsize(args.dst) / 1e6:.1f} MB, {args.method}) in {elapsed(t0)}")


if __name__ == "__main__":
    main()
