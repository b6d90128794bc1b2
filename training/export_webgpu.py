"""The base model's WebGPU variant: the fp32 export with its weights stored as fp16.

onnxruntime-web's WebGPU provider has no kernel for `MatMulInteger` (the row-wise int8 graph of
training/quantize.py), so that graph cannot run on a GPU. This variant keeps the fp32 graph of
training/export_onnx.py (the same panel-summed attention, the same inputs and outputs) with three
changes:
  - every weight matrix (2-D, >= 4096 elements: the matmuls and the tied [d,V] table; not the rotary
    tables) is stored as fp16 followed by one Cast to fp32. onnxruntime folds those Casts into fp32
    initializers when it creates the session, so every node computes in fp32 (and a device without
    shader-f16 runs it) while the file is halved (23.5 MB -> 11.9 MB);
  - the softmax max over the full panels and the tail block is one ReduceMax over both side by side
    (WebGPU's ReduceMax refuses the empty full-panel input of a pass with no full panel);
  - RMSNorm's mean is a MatMul with a column of ones: WebGPU's ReduceMean does not give a row the same
    bits whatever the number of rows in the pass, a MatMul does (so tree verification stays
    bit-identical to one-token decoding on WebGPU, as on wasm).

  /usr/bin/python3 -m training.export_onnx                  # data/onnx/base.onnx (fp32)
  /usr/bin/python3 -m training.export_webgpu                # data/onnx/base.onnx -> data/onnx/base.webgpu.onnx
  /usr/bin/python3 -m training.shard --name default         # adds it to the manifest as `base_webgpu`

The browser engine (src/browser/) loads `base_webgpu` instead of `base` when it runs on WebGPU.
"""
import argparse, os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_ELEMENTS = 4096  # as training/quantize.py: tiny matrices stay fp32


def to_fp16_weights(model):
    g = model.graph
    casts, keep = [], []
    for init in g.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.ndim == 2 and w.size >= MIN_ELEMENTS and not init.name.startswith("rope_"):
            keep.append(numpy_helper.from_array(w.astype(np.float16), init.name + "_fp16"))
            casts.append(helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "_to_fp32"))
        else:
            keep.append(init)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(keep)
    return model, len(casts)


def attr(node, name):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


def max_over_nonempty(model, n_heads):
    """The softmax max over the full panels, `ReduceMax(s_full [F,H,S,B], axes=[0,3])`, fails on WebGPU when
    there is no full panel (F = 0: every prefill's first chunk): its kernel refuses an empty input. Each
    `Max(ReduceMax(s_full), ReduceMax(s_tail))` becomes one ReduceMax over the full-panel scores and the tail
    scores side by side ([H*S, F*B + R], never empty: R >= 1). A max is exact in any order, so the value
    is the same."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    drop, add = set(), {}
    shape = numpy_helper.from_array(np.array([1, n_heads, -1, 1], np.int64), "webgpu_max_shape")
    count = 0
    for n in g.node:
        if n.op_type != "Max" or len(n.input) != 2:
            continue
        a, b = (producer.get(i) for i in n.input)
        if not (a and b and a.op_type == b.op_type == "ReduceMax" and list(attr(a, "axes") or []) == [0, 3]
                and list(attr(b, "axes") or []) == [3] and len(consumers[a.output[0]]) == len(consumers[b.output[0]]) == 1):
            continue
        p = f"webgpu_max{count}"
        count += 1
        nodes = [
            helper.make_node("Transpose", [a.input[0]], [p + "_t"], perm=[1, 2, 0, 3]),          # [H,S,F,B]
            helper.make_node("Flatten", [p + "_t"], [p + "_full"], axis=2),                     # [H*S, F*B]
            helper.make_node("Flatten", [b.input[0]], [p + "_tail"], axis=3),                   # [H*S, R]
            helper.make_node("Concat", [p + "_full", p + "_tail"], [p + "_all"], axis=1),
            helper.make_node("ReduceMax", [p + "_all"], [p + "_m"], axes=[1], keepdims=1),      # [H*S, 1]
            helper.make_node("Reshape", [p + "_m", shape.name], [n.output[0]]),                 # [1,H,S,1]
        ]
        drop.update([id(a), id(b)])
        add[id(n)] = nodes
    out = []
    for n in g.node:
        if id(n) in drop:
            continue
        out.extend(add.get(id(n), [n]))
    del g.node[:]
    g.node.extend(out)
    if count:
        g.initializer.append(shape)
    return model, count


def mean_by_matmul(model, d):
    """RMSNorm's `ReduceMean(x^2, axes=[-1])` over the d_model columns is not row-exact on WebGPU: a row's mean
    changes in its last bit with the number of rows in the pass (measured in Chromium's WebGPU on the
    exported graph), which moves a verified token's logits by ~1e-5 against decoding it alone. A MatMul
    with a [d,1] column of ones sums each row on its own, in one order, whatever the rows around it (as
    every MatMul of the graph does), so the mean becomes MatMul(x^2, ones) * (1/d)."""
    g = model.graph
    ones = numpy_helper.from_array(np.ones((d, 1), np.float32), "webgpu_mean_ones")
    inv = numpy_helper.from_array(np.array(1.0 / d, np.float32), "webgpu_mean_inv")
    out, count = [], 0
    for n in g.node:
        if n.op_type == "ReduceMean" and list(attr(n, "axes") or []) == [-1] and attr(n, "keepdims") in (None, 1):
            p = f"webgpu_mean{count}"
            count += 1
            out.append(helper.make_node("MatMul", [n.input[0], ones.name], [p + "_sum"]))
            out.append(helper.make_node("Mul", [p + "_sum", inv.name], [n.output[0]]))
        else:
            out.append(n)
    del g.node[:]
    g.node.extend(out)
    if count:
        g.initializer.extend([ones, inv])
    return model, count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="?", default="data/onnx/base.onnx")
    ap.add_argument("dst", nargs="?", default="data/onnx/base.webgpu.onnx")
    args = ap.parse_args()
    model, n = to_fp16_weights(onnx.load(args.src))
    # heads: dim 1 of past_key_0 [F,H,B,D]
    h = next(i for i in model.graph.input if i.name == "past_key_0").type.tensor_type.shape.dim[1].dim_value
    model, m = max_over_nonempty(model, h)
    d = next(i for i in model.graph.initializer if i.name == "embed_t_fp16").dims[0]
    model, r = mean_by_matmul(model, d)
    print(f"{m} attention max reductions and {r} RMSNorm means rewritten")
    onnx.checker.check_model(model)
    onnx.save(model, args.dst)
    print(f"{args.src} ({os.path.getsize(args.src) / 1e6:.1f} MB) -> {args.dst} "
          f"({os.path.getsize(args.dst) / 1e6:.1f} MB, {n} weight matrices in fp16)")


if __name__ == "__main__":
    main()
