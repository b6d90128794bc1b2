"""Fuse a draft head into the base model's verify pass: one session.run() verifies a token tree and
drafts the next round (greedy decoding).

Why: a separate head run costs a fixed ~0.3 ms `session.run()` plus its own op dispatch, about 0.4
of a one-token decode; inside the verify pass only the head's arithmetic is left.

The fused graph is the quantized base graph unchanged (same nodes, same weights: its logits,
hidden rows and K/V are those of the base graph, bit for bit), the head's graph unchanged (the
file the manifest ships as `<kind>_head`), and between them (S tree nodes, Ph head-cache
positions, Hh head heads of Dh, m accepted nodes including the root):
  inputs  head_past_key / head_past_value f32 [1,Hh,Ph,Dh]: the head's cache, every committed
            position before the tree's root;
          tree_parents int64 [S] (root: 0); tree_ancestors f32 [S,S]: 1 where node j (j > 0) is an
            ancestor of node i or i itself
  graph   greedy_ids = argmax(logits) [1,S]. Node j > 0 matches when its token is greedy_ids[parent j];
          a node is accepted when it and all its non-root ancestors match; the deepest accepted node
          and its ancestors are the path (the engine's greedy acceptance, repeated in the graph).
          The head runs over the path: position k gets hidden[path k] and next token
          greedy_ids[path k] (the next path token, or the bonus token after the last one): exactly the
          head's input once the path is committed. Its read-out of the last path node drafts the round
          after this one, its new rows extend the head's cache.
  outputs head_path int64 [m] (node ids, root first), head_query_row int64 [1] (the last of them),
          greedy_ids int64 [1,S], head_new_key / head_new_value f32 [1,Hh,m,Dh], head_log_probs (ctc)
          or head_logits (medusa)

The engine checks the graph's path against its own acceptance and keeps what agrees (all of it at
temperature 0 without logit processing, unless a stop cuts the round short).

  /usr/bin/python3 -m training.fuse_head --base data/onnx/base.int8.onnx \\
      --head data/onnx/ctc_head.int8.onnx --out data/onnx/ctc_fused.onnx
"""
import argparse, os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Head graph inputs -> values of the fused graph (the accepted path's rows, built below).
HEAD_INPUTS = {"hidden": "path/hidden", "next_ids": "path/next_ids", "position_ids": "path/position_ids",
               "attention_mask": "path/head_mask", "past_key": "head_past_key", "past_value": "head_past_value"}


def fuse(base: onnx.ModelProto, head: onnx.ModelProto) -> onnx.ModelProto:
    bg, hg = base.graph, head.graph
    base_inits = {i.name: i for i in bg.initializer}
    base_values = {n for node in bg.node for n in list(node.input) + list(node.output)} | {i.name for i in bg.input}
    for name in ("logits", "hidden", "input_ids", "position_ids"):
        if name not in base_values:
            raise SystemExit(f"base graph has no value {name}")
    missing = set(HEAD_INPUTS) - {i.name for i in hg.input}
    if missing:
        raise SystemExit(f"head graph lacks inputs {sorted(missing)} (a draft head graph: export_onnx build_prefix_head)")

    rename = dict(HEAD_INPUTS)
    inits = []
    for init in hg.initializer:
        same = base_inits.get(init.name)
        if same is not None and numpy_helper.to_array(same).tobytes() == numpy_helper.to_array(init).tobytes() \
                and same.data_type == init.data_type and list(same.dims) == list(init.dims):
            rename[init.name] = init.name  # shared with the base graph (the embedding table, constants)
        else:
            rename[init.name] = "head/" + init.name
            copy = onnx.TensorProto()
            copy.CopyFrom(init)
            copy.name = rename[init.name]
            inits.append(copy)
    outputs = {o.name: "head_" + o.name for o in hg.output}

    def name_of(v):
        if v == "":
            return v
        if v in outputs:
            return outputs[v]
        return rename.get(v, "head/" + v)

    head_nodes = []
    for n in hg.node:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = "head/" + n.name if n.name else ""
        del m.input[:]
        m.input.extend(name_of(v) for v in n.input)
        del m.output[:]
        m.output.extend(name_of(v) for v in n.output)
        head_nodes.append(m)

    # Greedy acceptance in the graph -> greedy_ids [1,S], the path [m] and the head's inputs over it
    # (before the head's nodes, which read them: ONNX wants nodes in topological order).
    nodes = []
    c = lambda name, arr: inits.append(numpy_helper.from_array(np.asarray(arr), name)) or name
    c("accept/axis0", np.array([0], np.int64))
    c("accept/axis1", np.array([1], np.int64))
    c("accept/half", np.array(0.5, np.float32))
    c("accept/one", np.array(1.0, np.float32))
    c("accept/root", np.array([0], np.int64))
    c("accept/ones2", np.array([1, 1], np.int64))
    c("accept/two", np.array([2], np.int64))
    c("accept/three", np.array([3], np.int64))
    mk = lambda op, ins, out, **a: nodes.append(helper.make_node(op, ins, [out], name=out, **a)) or out
    mk("ArgMax", ["logits"], "greedy_ids", axis=-1, keepdims=0)                                    # [1,S]
    g0 = mk("Squeeze", ["greedy_ids", "accept/axis0"], "accept/greedy")                            # [S]
    pg = mk("Gather", [g0, "tree_parents"], "accept/parent_greedy", axis=0)                       # [S]
    ids = mk("Squeeze", ["input_ids", "accept/axis0"], "accept/ids")                               # [S]
    miss = mk("Cast", [mk("Not", [mk("Equal", [ids, pg], "accept/match")], "accept/miss_b")],
              "accept/miss", to=TensorProto.FLOAT)                                                  # [S]
    bad = mk("MatMul", ["tree_ancestors", mk("Unsqueeze", [miss, "accept/axis1"], "accept/miss_col")],
             "accept/bad")                                                                          # [S,1]
    ok = mk("Cast", [mk("Less", [bad, "accept/half"], "accept/ok_b")], "accept/ok", to=TensorProto.FLOAT)
    depth = mk("Add", [mk("ReduceSum", ["tree_ancestors", "accept/axis1"], "accept/depth0", keepdims=1),
                       "accept/one"], "accept/depth")                                               # [S,1]
    mk("ArgMax", [mk("Mul", [ok, depth], "accept/score")], "head_query_row", axis=0, keepdims=0)   # [1]
    # The path: the root, then the query row's ancestors in node order (parents precede children).
    anc = mk("Gather", ["tree_ancestors", "head_query_row"], "accept/anc_row", axis=0)            # [1,S]
    nz = mk("NonZero", [anc], "accept/nonzero")                                                    # [2,a]
    below = mk("Squeeze", [mk("Gather", [nz, "accept/axis1"], "accept/nz1", axis=0), "accept/axis0"], "accept/below")
    path = mk("Concat", ["accept/root", below], "head_path", axis=0)                               # [m]
    mk("Gather", ["hidden", path], "path/hidden", axis=1)                                          # [1,m,d]
    mk("Gather", ["greedy_ids", path], "path/next_ids", axis=1)                                    # [1,m]
    mk("Gather", ["position_ids", path], "path/position_ids", axis=1)                              # [1,m]
    # The head reads out its last row, which sees the cache and every path row: an all-zero mask.
    m_ = mk("Shape", [path], "path/m")
    ph = mk("Slice", [mk("Shape", ["head_past_key"], "path/past_shape"), "accept/two", "accept/three"], "path/ph")
    shape = mk("Concat", ["accept/ones2", m_, mk("Add", [m_, ph], "path/t")], "path/mask_shape", axis=0)
    nodes.append(helper.make_node("ConstantOfShape", [shape], ["path/head_mask"], name="path/head_mask",
                                  value=numpy_helper.from_array(np.array([0.0], np.float32))))

    Hh, Dh = [d.dim_param or d.dim_value for d in next(i for i in hg.input if i.name == "past_key").type.tensor_type.shape.dim][1::2]
    new_inputs = [
        helper.make_tensor_value_info("head_past_key", TensorProto.FLOAT, [1, Hh, "Ph", Dh]),
        helper.make_tensor_value_info("head_past_value", TensorProto.FLOAT, [1, Hh, "Ph", Dh]),
        helper.make_tensor_value_info("tree_parents", TensorProto.INT64, ["S"]),
        helper.make_tensor_value_info("tree_ancestors", TensorProto.FLOAT, ["S", "S"]),
    ]
    new_outputs = [helper.make_tensor_value_info("greedy_ids", TensorProto.INT64, [1, "S"]),
                   helper.make_tensor_value_info("head_query_row", TensorProto.INT64, [1]),
                   helper.make_tensor_value_info("head_path", TensorProto.INT64, ["m"])]
    for o in hg.output:
        v = onnx.ValueInfoProto()
        v.CopyFrom(o)
        v.name = outputs[o.name]
        new_outputs.append(v)

    fused = onnx.ModelProto()
    fused.CopyFrom(base)
    g = fused.graph
    g.name = base.graph.name + "+" + hg.name
    g.node.extend(nodes + head_nodes)
    g.initializer.extend(inits)
    g.input.extend(new_inputs)
    g.output.extend(new_outputs)
    have = {(o.domain, o.version) for o in fused.opset_import}
    for o in head.opset_import:
        if (o.domain, o.version) not in have and not any(x.domain == o.domain for x in fused.opset_import):
            fused.opset_import.append(o)
    del fused.metadata_props[:]
    onnx.helper.set_model_props(fused, {"fused_head": hg.name})
    return fused


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the quantized base graph (what the manifest's `base` holds)")
    ap.add_argument("--head", required=True, help="the quantized draft head graph (what the manifest's `<kind>_head` holds)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    fused = fuse(onnx.load(args.base), onnx.load(args.head))
    onnx.checker.check_model(fused)
    onnx.save(fused, args.out)
    print(f"{args.base} + {args.head} -> {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB, "
          f"{len(fused.graph.node)} nodes)")


if __name__ == "__main__":
    main()
