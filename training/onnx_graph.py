"""A small ONNX graph builder: named values, initializers, and the few composite ops the models
use. The exported graphs are written op by op (not traced) so the layout is under our control:
one shared [d,V] table serves both the embedding lookup and the LM head, cos/sin come from
tables (exact in every runtime), and RMSNorm is written in the pattern ORT fuses."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Graph:
    def __init__(self, name):
        self.name = name
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._n = 0

    def fresh(self, hint):
        self._n += 1
        return f"{hint}_{self._n}"

    def input(self, name, elem, shape):
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, value, name, elem, shape):
        self.op("Identity", [value], name=name)
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))

    def init(self, name, array):
        a = np.asarray(array)  # (np.ascontiguousarray would turn a scalar into shape [1])
        self.inits.append(numpy_helper.from_array(a if a.ndim == 0 else np.ascontiguousarray(a), name))
        return name

    def const(self, array, hint="const"):
        return self.init(self.fresh(hint), np.asarray(array))

    def op(self, op_type, inputs, name=None, domain=None, **attrs):
        out = name or self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], domain=domain, **attrs))
        return out

    def ops(self, op_type, inputs, n, hint, **attrs):
        outs = [self.fresh(hint) for _ in range(n)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def model(self):
        g = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET),
                                                helper.make_opsetid("com.microsoft", 1)],
                              producer_name="ctc-edge")
        m.ir_version = 8
        return m

    # ---- composite ops --------------------------------------------------------------------
    def linear(self, x, weight_kn, bias=None, hint="w"):
        """x [...,K] @ W [K,N] (+ b). W is stored as an initializer named <hint> so that
        quantize.py can find and replace it."""
        w = self.init(hint, weight_kn.astype(np.float32))
        y = self.op("MatMul", [x, w])
        if bias is not None:
            y = self.op("Add", [y, self.const(bias.astype(np.float32), hint + "_b")])
        return y

    def rms_norm(self, x, weight, eps, hint):
        two = self.const(np.array(2.0, np.float32), "two")
        ms = self.op("ReduceMean", [self.op("Pow", [x, two])], axes=[-1], keepdims=1)
        denom = self.op("Sqrt", [self.op("Add", [ms, self.const(np.array(eps, np.float32), "eps")])])
        return self.op("Mul", [self.op("Div", [x, denom]), self.const(weight.astype(np.float32), hint)])

    def silu(self, x):
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def gelu(self, x):
        """Exact (erf) GELU, as torch's default."""
        inner = self.op("Erf", [self.op("Div", [x, self.const(np.array(np.sqrt(2.0), np.float32), "sqrt2")])])
        one = self.const(np.array(1.0, np.float32), "one")
        half = self.const(np.array(0.5, np.float32), "half")
        return self.op("Mul", [self.op("Mul", [x, half]), self.op("Add", [inner, one])])

    def shape_const(self, dims):
        return self.const(np.array(dims, np.int64), "shape")


def save(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, path)
