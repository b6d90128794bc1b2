"""Fuse a head v2 into the base model's verify pass: one session.run() verifies a token tree and
drafts the next round (greedy decoding).

Why: a separate head run costs a fixed ~0.3 ms `session.run()` plus its own op dispatch, about 0.4
of a one-token decode; inside the verify pass only the head's arithmetic is left.

The fused graph is the quantized base graph unchanged (same nodes, same weights: its logits,
hidden rows and K/V are those of the base graph, bit for bit) plus (S tree nodes, Ph head-cache
positions, Hh head heads of Dh):
  inputs  head_past_key / head_past_value f32 [1,Hh,Ph,Dh]: the head's cache, every committed
            position before the tree's root;
          head_attention_mask f32 [1,1,S,Ph+S]: additive; the cache, then the node's ancestors and itself;
          tree_parents int64 [S] (root: 0); tree_ancestors f32 [S,S]: 1 where node j (j > 0) is an
            ancestor of node i or i itself
  graph   greedy_ids = argmax(logits) [1,S]. Node j > 0 matches when its token is greedy_ids[parent j];
          a node is accepted when it and all its non-root ancestors match; query_row = the deepest
          accepted node: the engine's greedy acceptance, repeated in the graph.
          The head runs over all S nodes, node i's input being fuse(hidden_i, embedding(greedy_ids_i))
          at position_ids_i. On the accepted path that is exactly the head's input once the path is
          committed (a path node's next token is its greedy token; the deepest one's is the bonus), so
          the accepted rows are the head's cache rows for those positions, and the read-out of
          query_row drafts the round after this one.
  outputs head_new_key / head_new_value f32 [1,Hh,S,Dh], head_log_probs (ctc2) or head_logits
          (medusa2) for query_row, head_query_row int64 [1], greedy_ids int64 [1,S]

The engine checks the graph's path against its own acceptance and uses the head outputs only where
they agree (always, at temperature 0 without logit processing).

  /usr/bin/python3 -m training.fuse_head --base data/onnx/base.int8.onnx \\
      --head data/onnx/ctc2_head.query.int8.onnx --out data/onnx/ctc2_fused.onnx
"""
import argparse, os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Head graph inputs -> names in the fused graph ("hidden" and "position_ids" are the base graph's).
HEAD_INPUTS = {"hidden": "hidden", "next_ids": "greedy_ids", "position_ids": "position_ids",
               "attention_mask": "head_attention_mask", "past_key": "head_past_key",
               "past_value": "head_past_value", "query_row": "head_query_row"}


def fuse(base: onnx.ModelProto, head: onnx.ModelProto) -> onnx.ModelProto:
    bg, hg = base.graph, head.graph
    base_inits = {i.name: i for i in bg.initializer}
    base_values = {n for node in bg.node for n in list(node.input) + list(node.output)} | {i.name for i in bg.input}
    for name in ("logits", "hidden", "input_ids", "position_ids"):
        if name not in base_values:
            raise SystemExit(f"base graph has no value {name}")
    missing = set(HEAD_INPUTS) - {i.name for i in hg.input}
    if missing:
        raise SystemExit(f"head graph lacks inputs {sorted(missing)} (export it with query_input=True)")

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

    # Greedy acceptance in the graph -> greedy_ids [1,S], head_query_row [1] (before the head's nodes,
    # which read them: ONNX wants nodes in topological order).
    nodes = []
    c = lambda name, arr: inits.append(numpy_helper.from_array(np.asarray(arr), name)) or name
    c("accept/axis0", np.array([0], np.int64))
    c("accept/axis1", np.array([1], np.int64))
    c("accept/half", np.array(0.5, np.float32))
    c("accept/one", np.array(1.0, np.float32))
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

    Hh, Dh = [d.dim_param or d.dim_value for d in next(i for i in hg.input if i.name == "past_key").type.tensor_type.shape.dim][1::2]
    new_inputs = [
        helper.make_tensor_value_info("head_past_key", TensorProto.FLOAT, [1, Hh, "Ph", Dh]),
        helper.make_tensor_value_info("head_past_value", TensorProto.FLOAT, [1, Hh, "Ph", Dh]),
        helper.make_tensor_value_info("head_attention_mask", TensorProto.FLOAT, [1, 1, "S", "Th"]),
        helper.make_tensor_value_info("tree_parents", TensorProto.INT64, ["S"]),
        helper.make_tensor_value_info("tree_ancestors", TensorProto.FLOAT, ["S", "S"]),
    ]
    new_outputs = [helper.make_tensor_value_info("greedy_ids", TensorProto.INT64, [1, "S"]),
                   helper.make_tensor_value_info("head_query_row", TensorProto.INT64, [1])]
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
    ap.add_argument("--head", required=True, help="a quantized head v2 exported with query_input (export_onnx --fusable)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    fused = fuse(onnx.load(args.base), onnx.load(args.head))
    onnx.checker.check_model(fused)
    onnx.save(fused, args.out)
    print(f"{args.base} + {args.head} -> {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB, "
          f"{len(fused.graph.node)} nodes)")


if __name__ == "__main__":
    main()
