#!/usr/bin/env python3
"""Writes the embedded Fashion-MNIST subset (the first 6,000 training and 1,000 test images,
as gzipped IDX files) from the full data set installed by Debian's `dataset-fashion-mnist`.

    python3 crates/sparse-data/data/make_subset.py /usr/share/datasets/fashion-mnist

Fashion-MNIST is (c) Zalando SE, MIT licence: https://github.com/zalandoresearch/fashion-mnist
"""
import gzip, os, struct, sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
out = os.path.dirname(os.path.abspath(__file__))
for split, n in (("train", 6000), ("t10k", 1000)):
    for kind, item in (("images-idx3-ubyte", 784), ("labels-idx1-ubyte", 1)):
        raw = gzip.open(os.path.join(src, f"{split}-{kind}.gz")).read()
        ndim = raw[3]
        header = 4 + 4 * ndim
        dims = list(struct.unpack(">" + "I" * ndim, raw[4:header]))
        dims[0] = n
        body = raw[header:header + n * item]
        data = raw[:4] + struct.pack(">" + "I" * ndim, *dims) + body
        name = f"{split}-{kind}.gz"
        # mtime=0: the same bytes every time the script runs.
        with open(os.path.join(out, name), "wb") as f:
            f.write(gzip.compress(data, compresslevel=9, mtime=0))
        print(name, n, "items")
