"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

Format: 8-byte little-endian u64 header length N, then N bytes of JSON header
(padded with spaces to a multiple of 8), then the raw little-endian data section.
The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]},
offsets relative to the start of the data section; an optional "__metadata__"
entry holds string->string metadata.
"""
import json
import struct

import numpy as np

# numpy dtype -> safetensors dtype tag, for writing.
_WRITE_DTYPES = {
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.int32): "I32",
    np.dtype(np.int64): "I64",
}

# safetensors dtype tag -> numpy dtype, for reading (BF16 handled separately).
_READ_DTYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
}


def save(path, tensors, metadata=None):
    """Write dict name -> numpy array to `path`.

    float32 -> F32, float16 -> F16, int32 -> I32, int64 -> I64. Other dtypes are
    rejected rather than silently converted (float64 included: callers cast).
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        if arr.dtype not in _WRITE_DTYPES:
            raise TypeError(f"safetensors_io.save: tensor {name!r} has unsupported dtype {arr.dtype}")
        tag = _WRITE_DTYPES[arr.dtype]
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": tag,
            "shape": [int(s) for s in arr.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)


def load(path):
    """Read `path` into dict name -> numpy array (F32, F16, F64, I32, I64, U8, I8, BF16).

    BF16 is returned as float32 (the 16 stored bits become the high half).
    """
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tag = info["dtype"]
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        if not (0 <= begin <= end <= len(data)):
            raise ValueError(f"{path}: tensor {name!r} offsets {begin},{end} out of range")
        buf = data[begin:end]
        if tag == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif tag in _READ_DTYPES:
            arr = np.frombuffer(buf, dtype=_READ_DTYPES[tag])
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {tag}")
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ValueError(f"{path}: tensor {name!r} has {arr.size} elements, shape {shape} needs {count}")
        out[name] = arr.reshape(shape).astype(arr.dtype.newbyteorder("="), copy=True)
    return out
