#!/usr/bin/python3
"""Writes a tree of small model repositories for audit tests and the audit benchmark,
deterministically, and prints what a scan of it must find as JSON on stdout.

usage: make-tree.py OUTDIR [--repos N] [--layout orgname|hf] [--evil-every K]

Each repository holds ten files: config.json, README.md, tokenizer.json (a chat
template-free JSON), model.safetensors, model.gguf, pytorch_model.bin (a PyTorch zip
checkpoint written byte by byte here, not with torch.save), weights.npy, optimizer.pkl
(a plain protocol-2 pickle), vocab.txt and generation_config.json. Every K-th
repository (by index) also fails, each in one way, in turn:
  0  pytorch_model.bin's data.pkl imports posix:system        UNSAFE_IMPORT
  1  optimizer.pkl imports subprocess:Popen                    UNSAFE_IMPORT
  2  model.safetensors declares license cc-by-nc-4.0          RESTRICTED_LICENSE
  3  model.safetensors is a Git LFS pointer                     LFS_POINTER
  4  optimizer.pkl imports builtins:eval and posix:system      UNSAFE_IMPORT
The payloads are data: nothing here runs them.
Layouts: orgname = OUTDIR/org<i%37>/model-<i>/FILE; hf = OUTDIR/models--org<i%37>--model-<i>/snapshots/<rev>/FILE."""
import argparse
import io
import json
import os
import struct
import zipfile
import zlib

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--repos", type=int, default=20)
ap.add_argument("--layout", choices=("orgname", "hf"), default="orgname")
ap.add_argument("--evil-every", type=int, default=7)
args = ap.parse_args()


def pickle_global(module, name, arg=b"true"):
    """protocol 2: GLOBAL module name, one string argument, REDUCE."""
    return (b"\x80\x02c" + module + b"\n" + name + b"\n" +
            b"X" + struct.pack("<I", len(arg)) + arg + b"\x85R.")


def pickle_two_globals(a, b):
    return (b"\x80\x02(c" + a[0] + b"\n" + a[1] + b"\n" + b"X\x01\x00\x00\x001\x85R" +
            b"c" + b[0] + b"\n" + b[1] + b"\n" + b"X\x04\x00\x00\x00true\x85Rl.")


CLEAN_PICKLE = b"\x80\x02}q\x00(X\x02\x00\x00\x00lrq\x01G?PbM\xd2\xf1\xa9\xfcX\x04\x00\x00\x00stepq\x02K\x07u."

# The state dict torch.save writes for {"w": tensor of 4 float32}: collections.OrderedDict
# and torch._utils._rebuild_tensor_v2 over a persistent-id storage "0".
TORCH_DATA_PKL = (
    b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wq\x02"
    b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04"
    b"ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04tq\x08QK\x00K\x04\x85q\t"
    b"K\x01\x85q\n\x89ccollections\nOrderedDict\nq\x0b)Rq\x0ctq\rRq\x0es.")


def torch_zip(data_pkl):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/data/0", struct.pack("<4f", 1, 2, 3, 4))
        z.writestr("archive/version", b"3\n")
    return buf.getvalue()


def safetensors(license=None):
    h = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    if license:
        h["__metadata__"] = {"license": license}
    hb = json.dumps(h, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb)) + hb + struct.pack("<4f", 1, 2, 3, 4)


def gguf():
    def s(x):
        return struct.pack("<Q", len(x)) + x
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + s(b"general.license") + struct.pack("<I", 8) + s(b"apache-2.0")


def npy():
    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"
    hdr += b" " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + struct.pack("<4f", 1, 2, 3, 4)


LFS = (b"version https://git-lfs.github.com/spec/v1\n"
       b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 548105171\n")

FAILS = [
    ("pytorch_model.bin", torch_zip(pickle_global(b"posix", b"system")), "UNSAFE_IMPORT", ["posix:system"]),
    ("optimizer.pkl", pickle_global(b"subprocess", b"Popen"), "UNSAFE_IMPORT", ["subprocess:Popen"]),
    ("model.safetensors", safetensors("cc-by-nc-4.0"), "RESTRICTED_LICENSE", []),
    ("model.safetensors", LFS, "LFS_POINTER", []),
    ("optimizer.pkl", pickle_two_globals((b"builtins", b"eval"), (b"posix", b"system")), "UNSAFE_IMPORT",
     ["builtins:eval", "posix:system"]),
]


def repo_files(i):
    files = {
        "config.json": json.dumps({"model_type": "bert", "hidden_size": 8 + i % 5}).encode(),
        "README.md": b"# model %d\n\nA tiny test model.\n" % i,
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"vocab": {"a": 0, "b": 1}}}).encode(),
        "model.safetensors": safetensors("apache-2.0"),
        "model.gguf": gguf(),
        "pytorch_model.bin": torch_zip(TORCH_DATA_PKL),
        "weights.npy": npy(),
        "optimizer.pkl": CLEAN_PICKLE,
        "vocab.txt": b"[PAD]\n[UNK]\nhello\nworld\n",
        "generation_config.json": b'{"max_length": 20}',
    }
    fail = None
    if args.evil_every and i % args.evil_every == 0:
        fail = FAILS[(i // args.evil_every) % len(FAILS)]
        files[fail[0]] = fail[1]
    return files, fail


expect = {"files": 0, "denied": 0, "repositories": args.repos, "failed_by_rule": {}, "globals": {},
          "licenses": {}, "bytes": 0}
for i in range(args.repos):
    org, name = "org%d" % (i % 37), "model-%05d" % i
    if args.layout == "hf":
        d = os.path.join(args.out, "models--%s--%s" % (org, name), "snapshots", "%040x" % zlib.crc32(name.encode()))
    else:
        d = os.path.join(args.out, org, name)
    os.makedirs(d, exist_ok=True)
    files, fail = repo_files(i)
    for fn, data in files.items():
        with open(os.path.join(d, fn), "wb") as f:
            f.write(data)
        expect["files"] += 1
        expect["bytes"] += len(data)
    if fail:
        expect["denied"] += 1
        expect["failed_by_rule"][fail[2]] = expect["failed_by_rule"].get(fail[2], 0) + 1
        for g in fail[3]:
            expect["globals"][g] = expect["globals"].get(g, 0) + 1
        if fail[2] == "RESTRICTED_LICENSE":
            expect["licenses"]["cc-by-nc-4.0"] = expect["licenses"].get("cc-by-nc-4.0", 0) + 1
json.dump(expect, __import__("sys").stdout, sort_keys=True)
print()
