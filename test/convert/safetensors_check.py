"""training/safetensors.py against the format: round trips of every dtype, BF16 as torch rounds it,
a file written by hand byte for byte, a sharded checkpoint (index.json + parts), and refusals of
malformed files. Prints "ok" or fails with an assertion."""
import json, os, struct, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
import numpy as np
import torch

from training.safetensors import SafetensorsError, load_checkpoint_weights, read_safetensors, write_safetensors

d = tempfile.mkdtemp()
p = lambda name: os.path.join(d, name)
rng = np.random.default_rng(0)

# every dtype the writer knows, a 0-d and an empty tensor, a big-endian input
t = {"f64": rng.standard_normal((3, 2)), "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
     "f16": rng.standard_normal(5).astype(np.float16), "i64": np.arange(-3, 3, dtype=np.int64),
     "i32": np.arange(4, dtype=np.int32), "i16": np.arange(4, dtype=np.int16), "i8": np.arange(-2, 2, dtype=np.int8),
     "u8": np.arange(4, dtype=np.uint8), "bool": np.array([True, False]), "scalar": np.array(2.5, np.float32),
     "empty": np.zeros((0, 4), np.float32), "big_endian": np.arange(3, dtype=">i4")}
write_safetensors(p("all.safetensors"), t, {"format": "pt"})
raw = read_safetensors(p("all.safetensors"), as_float32=False)
for k, v in t.items():
    assert raw[k].shape == v.shape and np.array_equal(raw[k], v), k
assert read_safetensors(p("all.safetensors"))["f16"].dtype == np.float32

# BF16: what torch stores for the same floats, read back as float32
x = (rng.standard_normal(1000) * 100).astype(np.float32)
write_safetensors(p("bf16.safetensors"), {"x": x}, bf16={"x"})
want = torch.from_numpy(x).to(torch.bfloat16)
assert np.array_equal(read_safetensors(p("bf16.safetensors"), as_float32=False)["x"], want.view(torch.int16).numpy().view(np.uint16))
assert np.array_equal(read_safetensors(p("bf16.safetensors"))["x"], want.float().numpy())

# a file written by hand: unpadded header, tensors out of name order
body = np.array([1, 2], "<i2").tobytes() + np.array([0.5], "<f4").tobytes()
header = json.dumps({"b": {"dtype": "I16", "shape": [2], "data_offsets": [0, 4]},
                     "a": {"dtype": "F32", "shape": [1, 1], "data_offsets": [4, 8]}}).encode()
open(p("hand.safetensors"), "wb").write(struct.pack("<Q", len(header)) + header + body)
h = read_safetensors(p("hand.safetensors"))
assert h["a"].tolist() == [[0.5]] and h["b"].tolist() == [1, 2]

# a sharded checkpoint
os.makedirs(p("sharded"))
write_safetensors(p("sharded/model-00001-of-00002.safetensors"), {"w1": np.ones(2, np.float32)})
write_safetensors(p("sharded/model-00002-of-00002.safetensors"), {"w2": np.zeros(3, np.float32)})
json.dump({"weight_map": {"w1": "model-00001-of-00002.safetensors", "w2": "model-00002-of-00002.safetensors"}},
          open(p("sharded/model.safetensors.index.json"), "w"))
s = load_checkpoint_weights(p("sharded"))
assert sorted(s) == ["w1", "w2"] and s["w2"].shape == (3,)


def refused(header, data=b"", length=None, match=""):
    hb = json.dumps(header).encode() if isinstance(header, dict) else header
    open(p("bad.safetensors"), "wb").write(struct.pack("<Q", len(hb) if length is None else length) + hb + data)
    try:
        read_safetensors(p("bad.safetensors"))
    except SafetensorsError as e:
        assert match in str(e), (match, str(e))
        return
    raise AssertionError(f"accepted {header!r}")


f32 = lambda a, b, shape=(1,): {"dtype": "F32", "shape": list(shape), "data_offsets": [a, b]}
refused({"x": f32(0, 4)}, b"\0" * 4, length=10 ** 9, match="header length")
refused(b"not json", match="not JSON")
refused({"x": f32(0, 8)}, b"\0" * 4, match="outside")
refused({"x": f32(0, 4, (2,))}, b"\0" * 4, match="4 bytes for F32 [2]")
refused({"x": f32(0, 4), "y": f32(2, 6)}, b"\0" * 6, match="gap or overlap")
refused({"x": f32(4, 8)}, b"\0" * 8, match="gap or overlap")
refused({"x": f32(0, 4)}, b"\0" * 6, match="after the last tensor")
refused({"x": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\0", match="unsupported dtype")
refused({"x": {"shape": [1]}}, match="without dtype")
print("ok")
