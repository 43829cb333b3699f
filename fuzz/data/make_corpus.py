"""Writes the seed corpus of the data fuzz targets (fuzz/data/corpus/{idx,cifar,text}).

Run from the repository root: python3 fuzz/data/make_corpus.py
"""
import gzip, os, random, struct

base = "fuzz/data/corpus"
for d in ["idx", "cifar", "text"]:
    os.makedirs(f"{base}/{d}", exist_ok=True)
raw = gzip.open("crates/sparse-data/data/t10k-images-idx3-ubyte.gz").read()
n = 3
small = bytes([0, 0, 8, 3]) + struct.pack(">III", n, 28, 28) + raw[16:16 + n * 784]
open(f"{base}/idx/images3.idx", "wb").write(small)
open(f"{base}/idx/images3.idx.gz", "wb").write(gzip.compress(small))
lab = gzip.open("crates/sparse-data/data/t10k-labels-idx1-ubyte.gz").read()
open(f"{base}/idx/labels5.idx", "wb").write(bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + lab[8:13])
# A header claiming 10^12 bytes: must be an error, not an allocation.
open(f"{base}/idx/huge-header.idx", "wb").write(
    bytes([0, 0, 8, 3]) + struct.pack(">III", 1000000, 1000, 1000) + b"\0" * 16)
random.seed(1)
rec = lambda label: bytes([label]) + bytes(random.randrange(256) for _ in range(3072))
open(f"{base}/cifar/two.bin", "wb").write(rec(3) + rec(9))
open(f"{base}/cifar/one.bin", "wb").write(rec(0))
open(f"{base}/text/ascii.txt", "w").write(
    "MACBETH.\nIs this a dagger which I see before me,\nThe handle toward my hand?\n")
open(f"{base}/text/unicode.txt", "w", encoding="utf-8").write("naïve café, Ærø — 日本語 🎭!\n")
