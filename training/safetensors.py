"""Read and write the safetensors format with numpy.

Debian 12 packages no safetensors library (no python3-safetensors; pip is not used here), and the
format is small enough to read directly (https://github.com/huggingface/safetensors, "Format"):

  8 bytes   N, little-endian unsigned 64-bit: the size of the header
  N bytes   a JSON object (UTF-8, may be padded with spaces): for each tensor name
            {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, offsets relative to the
            byte after the header; an optional "__metadata__" object of strings
  the rest  the tensors' bytes, little-endian, row-major, back to back

The reader checks what the format promises (offsets inside the data, contiguous and not
overlapping, sizes matching dtype x shape) and refuses a file that breaks it rather than guess.
Sharded checkpoints (model.safetensors.index.json + parts) are read by `load_checkpoint_weights`.
"""
import json, os, struct

import numpy as np

# safetensors dtype -> numpy little-endian dtype; BF16 has no numpy type: read as uint16, widened below
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
MAX_HEADER = 100_000_000  # the reference implementation's limit


class SafetensorsError(ValueError):
    pass


def bf16_to_f32(u16):
    """bfloat16 bits (uint16) -> float32: bf16 is the top half of an IEEE float32."""
    return (u16.astype(np.uint32) << 16).view(np.float32)


def read_header(f, size):
    raw = f.read(8)
    if len(raw) != 8:
        raise SafetensorsError("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw)
    if n > MAX_HEADER or 8 + n > size:
        raise SafetensorsError(f"header length {n} does not fit the file ({size} bytes)")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    return n, header


def read_safetensors(path, as_float32=True):
    """{name: np.ndarray} of one .safetensors file. as_float32: F16/BF16/F64 tensors become float32
    (what the export computes in); otherwise BF16 comes back as its uint16 bits."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        n, header = read_header(f, size)
    header.pop("__metadata__", None)
    data_size = size - 8 - n
    spans = []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{name}: entry without dtype / shape / data_offsets") from None
        if dtype not in DTYPES:
            raise SafetensorsError(f"{name}: unsupported dtype {dtype}")
        if not (0 <= begin <= end <= data_size):
            raise SafetensorsError(f"{name}: data_offsets [{begin}, {end}] outside the {data_size} data bytes")
        if int(np.prod(shape, dtype=np.int64)) * np.dtype(DTYPES[dtype]).itemsize != end - begin:
            raise SafetensorsError(f"{name}: {end - begin} bytes for {dtype} {shape}")
        spans.append((begin, end, name, dtype, shape))
    spans.sort()
    pos = 0
    for begin, end, name, _, _ in spans:
        if begin != pos:
            raise SafetensorsError(f"{name}: data starts at {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != data_size:
        raise SafetensorsError(f"{data_size - pos} bytes after the last tensor")
    # a read-only memory map: the tensors are views, copied only where converted
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n, shape=(data_size,)) if data_size else np.zeros(0, np.uint8)
    out = {}
    for begin, end, name, dtype, shape in spans:
        a = data[begin:end].view(DTYPES[dtype]).reshape(shape)
        if as_float32 and dtype == "BF16":
            a = bf16_to_f32(a)
        elif as_float32 and dtype in ("F16", "F64"):
            a = a.astype(np.float32)
        out[name] = a
    return out


def f32_to_bf16(a):
    """float32 -> bfloat16 bits (uint16), rounded to nearest even (as torch rounds; finite values)."""
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path, tensors, metadata=None, bf16=()):
    """Writes {name: np.ndarray} (numpy dtypes of DTYPES) in the format above, tensors in name order,
    the header padded with spaces to a multiple of 8 as the reference does. Names in `bf16` are
    stored as BF16 (rounded from float32)."""
    codes = {np.dtype(v): k for k, v in DTYPES.items() if k != "BF16"}
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.asarray(tensors[name], order="C")  # (ascontiguousarray would make a scalar [1])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        code = codes.get(a.dtype)
        if name in bf16:
            a, code = f32_to_bf16(a).astype("<u2"), "BF16"
        if code is None:
            raise SafetensorsError(f"{name}: dtype {a.dtype} has no safetensors code here")
        b = a.tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_checkpoint_weights(folder):
    """Every tensor of a Hugging Face checkpoint folder: model.safetensors, or the parts that
    model.safetensors.index.json names (its weight_map)."""
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if os.path.exists(index):
        weight_map = json.load(open(index))["weight_map"]
        out = {}
        for part in sorted(set(weight_map.values())):
            out.update(read_safetensors(os.path.join(folder, part)))
        missing = set(weight_map) - set(out)
        if missing:
            raise SafetensorsError(f"{index} names tensors its parts lack: {sorted(missing)[:5]}")
        return out
    raise SystemExit(f"{folder}: no model.safetensors or model.safetensors.index.json "
                     "(only the safetensors format is read; convert a pytorch_model.bin first)")
