#!/usr/bin/env python3
"""Writes the seed corpus of the `decode` fuzz target: small valid .sparse files, written from
the format's description (crates/sparse-export/src/format.rs) independently of the Rust
encoder; crates/sparse-export/tests/main/corpus.rs checks that the Rust decoder reads them."""
import os
import struct
import zlib

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "decode")


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def record(path, shape, dense, encoding):
    numel = 1
    for d in shape:
        numel *= d
    nz = [(i, v) for i, v in enumerate(dense) if v != 0.0]
    body = struct.pack("<H", len(path)) + path.encode() + bytes([len(shape)])
    body += b"".join(struct.pack("<I", d) for d in shape)
    if encoding == 0:
        payload = b"".join(struct.pack("<f", v) for v in dense)
        nnz = numel
    elif encoding == 1:
        bits = bytearray((numel + 7) // 8)
        for i, _ in nz:
            bits[i // 8] |= 1 << (i % 8)
        payload = bytes(bits) + b"".join(struct.pack("<f", v) for _, v in nz)
        nnz = len(nz)
    else:
        idx, prev = bytearray(), None
        for i, _ in nz:
            idx += varint(i if prev is None else i - prev - 1)
            prev = i
        payload = bytes(idx) + b"".join(struct.pack("<f", v) for _, v in nz)
        nnz = len(nz)
    body += bytes([0, encoding]) + struct.pack("<QQ", nnz, len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def file(records):
    return b"SPRSBURN" + struct.pack("<HHI", 1, 0, len(records)) + b"".join(records)


os.makedirs(HERE, exist_ok=True)
w = [0.0, 1.5, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 3.0]
rare = [0.0] * 40
rare[3], rare[37] = 0.5, -4.0  # 2 of 40: delta-coded indices are smallest
samples = {
    "empty.sparse": file([]),
    "dense.sparse": file([record("fc.bias", [3], [1.0, -1.0, 0.5], 0)]),
    "bitmask.sparse": file([record("fc.weight", [3, 4], w, 1)]),
    "delta.sparse": file([record("conv.weight", [2, 1, 4, 5], rare, 2)]),
    "three.sparse": file([record("a", [3], [1.0, -1.0, 0.5], 0), record("b", [3, 4], w, 1),
                          record("c", [40], rare, 2)]),
}
for name, data in samples.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
print(f"wrote {len(samples)} files to {HERE}")
