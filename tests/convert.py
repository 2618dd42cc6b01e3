#!/usr/bin/python3
"""convert.py — TAP: `modelgate convert` end to end through the real CLI.

Real checkpoints of several architectures and dtypes (zip and legacy layouts,
slices, views, strided tensors, a training checkpoint with optimizer state, tied
weights, protocol 4, .npy/.npz) are converted, and every tensor of the result,
read back with the small safetensors reader below, is bit-identical to what
torch.load (numpy.load) returns for the original. Hostile files (the repository's
malicious fixtures, and checkpoints the scan allows but the converter cannot write
faithfully) are refused and leave no output. Output-path errors exit 2.
The test calls torch.load; the converter never runs any pickle."""
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

MODELGATE = os.environ["MODELGATE"]
FIXTURES = os.environ.get("FIXTURES", "")

results = []


def tap(ok, name, diag=None):
    results.append(bool(ok))
    print(("ok" if ok else "not ok") + f" {len(results)} - {name}")
    if diag is not None and not ok:
        for line in str(diag).splitlines()[:30]:
            print("# " + line)
    sys.stdout.flush()


def convert(src, dst, *extra):
    p = subprocess.run([MODELGATE, "convert", *extra, src, dst], capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# A strict safetensors reader: the layout rules of the reference crate.
# --------------------------------------------------------------------------

ST_DTYPES = {
    "BOOL": (torch.bool, 1), "U8": (torch.uint8, 1), "I8": (torch.int8, 1), "I16": (torch.int16, 2),
    "I32": (torch.int32, 4), "I64": (torch.int64, 8), "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2), "F32": (torch.float32, 4), "F64": (torch.float64, 8),
}
NP_ONLY = {"U16": (np.uint16, 2), "U32": (np.uint32, 4), "U64": (np.uint64, 8)}


def st_read(path):
    """Returns ({name: bytes, dtype, shape}, metadata) or raises ValueError."""
    data = open(path, "rb").read()
    if len(data) < 8:
        raise ValueError("shorter than 8 bytes")
    n = struct.unpack("<Q", data[:8])[0]
    if n > 100_000_000 or 8 + n > len(data):
        raise ValueError("header length %d" % n)
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if n % 8:
        raise ValueError("header not padded to 8 bytes")
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ValueError("__metadata__ values must be strings")
    body = data[8 + n:]
    spans = []
    out = {}
    for name, info in header.items():
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("%s: keys %s" % (name, sorted(info)))
        size = ST_DTYPES.get(info["dtype"], NP_ONLY.get(info["dtype"], (None, 0)))[1]
        if not size:
            raise ValueError("%s: dtype %s" % (name, info["dtype"]))
        a, b = info["data_offsets"]
        numel = 1
        for d in info["shape"]:
            numel *= d
        if b - a != numel * size:
            raise ValueError("%s: %d bytes for %d elements" % (name, b - a, numel))
        spans.append((a, b))
        out[name] = (body[a:b], info["dtype"], tuple(info["shape"]))
    spans.sort()
    pos = 0
    for a, b in spans:
        if a != pos:
            raise ValueError("data not contiguous at %d" % a)
        pos = b
    if pos != len(body):
        raise ValueError("data section is %d bytes, tensors cover %d" % (len(body), pos))
    return out, meta


def raw(t):
    """The bytes of a tensor in row-major order."""
    t = t.detach().contiguous().reshape(-1)
    if t.numel() == 0:
        return b""
    return t.view(torch.uint8).numpy().tobytes()


ST_OF_TORCH = {v[0]: k for k, v in ST_DTYPES.items()}


def flatten(obj, prefix=""):
    """What the converter should write: {name: tensor}, {name: value}."""
    tensors, values = {}, {}

    def walk(o, p):
        if isinstance(o, torch.Tensor):
            tensors[p] = o
        elif isinstance(o, dict):
            if not o and p:
                values[p] = {}
            for k, v in o.items():
                walk(v, f"{p}.{k}" if p else str(k))
        elif isinstance(o, (list, tuple)):
            if p and all(x is None or isinstance(x, (bool, int, float, str)) for x in o):
                values[p] = list(o)
            else:
                for i, v in enumerate(o):
                    walk(v, f"{p}.{i}" if p else str(i))
        else:
            values[p] = o

    walk(obj, prefix)
    return tensors, values


def same_tensors(expect, got):
    """expect: {name: tensor}; got: st_read()[0]. Returns a list of problems."""
    bad = []
    if set(expect) != set(got):
        bad.append("names differ: missing %s, extra %s" % (sorted(set(expect) - set(got))[:5],
                                                          sorted(set(got) - set(expect))[:5]))
    for name in sorted(set(expect) & set(got)):
        t = expect[name]
        data, dtype, shape = got[name]
        if ST_OF_TORCH.get(t.dtype) != dtype:
            bad.append("%s: dtype %s, expected %s" % (name, dtype, t.dtype))
        elif tuple(t.shape) != shape:
            bad.append("%s: shape %s, expected %s" % (name, shape, tuple(t.shape)))
        elif raw(t) != data:
            bad.append("%s: bytes differ" % name)
    return bad


TMP = tempfile.mkdtemp(prefix="modelgate-convert-")


def path(name):
    return os.path.join(TMP, name)


def check_roundtrip(name, obj, legacy=False, protocol=2, expect_tied=None, expect_dropped=()):
    """torch.save obj, convert, compare with torch.load. Returns problems."""
    stem = name + (".legacy" if legacy else "")
    src, dst = path(stem + ".pt"), path(stem + ".safetensors")
    if legacy:
        torch.save(obj, src, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    else:
        torch.save(obj, src, pickle_protocol=protocol)
    rc, out = convert(src, dst)
    if rc != 0:
        return ["exit %d: %s" % (rc, out)]
    loaded = torch.load(src)
    tensors, values = flatten(loaded)
    try:
        got, meta = st_read(dst)
    except ValueError as e:
        return ["invalid safetensors: %s" % e]
    bad = []
    tied = expect_tied or {}
    for dropped, kept in tied.items():
        if meta.get(dropped) != kept:
            bad.append("tied %s -> %s not in __metadata__ (%s)" % (dropped, kept, meta.get(dropped)))
        tensors.pop(dropped, None)
    bad += same_tensors(tensors, got)
    for k, v in values.items():
        if k in expect_dropped:
            if k in meta:
                bad.append("value %s should have been dropped" % k)
        elif k not in meta:
            bad.append("value %s missing from __metadata__" % k)
        elif json.loads(meta[k]) != (list(v) if isinstance(v, tuple) else v):
            bad.append("value %s: %r != %r" % (k, meta[k], v))
    if meta.get("format") != "pt":
        bad.append("format is %r" % meta.get("format"))
    if meta.get("source_sha256") != hashlib.sha256(open(src, "rb").read()).hexdigest():
        bad.append("source_sha256 is not the input's SHA-256")
    return bad


def check(name, problems):
    tap(not problems, name, "\n".join(problems))


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

torch.manual_seed(0)


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3)
        self.bn = torch.nn.BatchNorm2d(8)
        self.c2 = torch.nn.Conv2d(8, 4, 3, groups=2)
        self.fc = torch.nn.Linear(16, 10)


class TiedLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Embedding(50, 16)
        self.rnn = torch.nn.GRU(16, 16)
        self.decoder = torch.nn.Linear(16, 50)
        self.decoder.weight = self.encoder.weight


mlp = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
conv = ConvNet()
conv.bn.running_mean.uniform_()
lstm = torch.nn.LSTM(6, 12, num_layers=2, bidirectional=True)
encoder = torch.nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32)
tied = TiedLM()

check("MLP state dict (fp32, zip) converts bit-identical", check_roundtrip("mlp", mlp.state_dict()))
check("conv net with BatchNorm (int64 num_batches_tracked) converts bit-identical",
      check_roundtrip("conv", conv.state_dict()))
check("bidirectional 2-layer LSTM converts bit-identical", check_roundtrip("lstm", lstm.state_dict()))
check("transformer encoder layer converts bit-identical", check_roundtrip("encoder", encoder.state_dict()))
check("embedding with tied decoder: one copy written, the dropped name recorded in __metadata__",
      check_roundtrip("tied", tied.state_dict(), expect_tied={"encoder.weight": "decoder.weight"}))
tap("tied" in convert(path("tied.pt"), path("tied2.safetensors"))[1], "the output names the tied weights")

dtypes = {
    "f16": torch.randn(5, 3).half(), "bf16": torch.randn(4, 4).bfloat16(), "f64": torch.randn(3, dtype=torch.float64),
    "i8": torch.randint(-128, 127, (7,), dtype=torch.int8), "u8": torch.randint(0, 255, (2, 5), dtype=torch.uint8),
    "i16": torch.randint(-1000, 1000, (3,), dtype=torch.int16), "i32": torch.randint(-9, 9, (3, 1), dtype=torch.int32),
    "i64": torch.arange(6).reshape(2, 3), "bool": torch.rand(9) > 0.5, "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 4), "f32": torch.randn(2, 2, 2),
}
check("fp16/bf16/fp64/int8/uint8/int16/int32/int64/bool, scalar and empty tensors are bit-identical",
      check_roundtrip("dtypes", dtypes))
check("a half-precision model (model.half()) converts bit-identical",
      check_roundtrip("mlp-half", torch.nn.Sequential(torch.nn.Linear(4, 4)).half().state_dict()))

base = torch.arange(40, dtype=torch.float32)
views = {
    "slice": base[7:19],                       # non-zero storage offset, storage not saved whole
    "rows": torch.randn(10, 6)[3:7],           # offset along dim 0: still contiguous
    "view": torch.randn(24).view(2, 3, 4),
    "first": torch.arange(100)[:30], "second": torch.arange(100)[50:80],
}
check("slices (non-zero storage offsets) and views are bit-identical", check_roundtrip("views", views))

big = torch.arange(60, dtype=torch.float32).reshape(6, 10)
disjoint = {"a": big[0:2], "b": big[3:5]}       # one storage, bytes that do not overlap
check("two disjoint slices of one storage are both written", check_roundtrip("disjoint", disjoint))

strided = {
    "transposed": torch.randn(5, 7).t(),
    "permuted": torch.randn(2, 3, 4).permute(2, 0, 1),
    "stepped": torch.randn(6, 8)[:, ::3],
    "expanded": torch.randn(3, 1).expand(3, 5),
    "int_t": torch.arange(12, dtype=torch.int16).reshape(3, 4).t(),
}
check("strided tensors (transpose, permute, step, expand) are gathered bit-identical",
      check_roundtrip("strided", strided))

model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
opt = torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.9, 0.98))
for _ in range(2):
    opt.zero_grad()
    model(torch.randn(3, 4)).pow(2).sum().backward()
    opt.step()
sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
model(torch.randn(3, 4)).sum().backward()
sgd.step()
training = {"model": model.state_dict(), "optimizer": opt.state_dict(), "sgd": sgd.state_dict(), "epoch": 7,
            "loss": 0.123456789, "best": float("inf"), "arch": "mlp-\"v2\"\n", "done": False, "note": None,
            "sizes": [4, 8, 2], "history": list(range(100))}
check("training checkpoint: model, Adam and SGD state, hyper-parameters",
      check_roundtrip("training", training, expect_dropped=("history",)))
got, meta = st_read(path("training.safetensors"))
tap("optimizer.state.0.exp_avg" in got and meta.get("epoch") == "7" and json.loads(meta["optimizer.param_groups.0.betas"]) == [0.9, 0.98],
    "nested names are joined with '.', values are JSON in __metadata__")
rc, out = convert(path("training.pt"), path("training2.safetensors"))
tap(rc == 0 and "dropped: history" in out and "history" not in st_read(path("training2.safetensors"))[1],
    "a list longer than metadata takes is dropped and listed", out)

for name, obj in (("mlp", mlp.state_dict()), ("conv", conv.state_dict()), ("training", {k: v for k, v in training.items() if k != "history"}),
                  ("strided", strided), ("dtypes", dtypes), ("views", views)):
    check(f"legacy format (_use_new_zipfile_serialization=False): {name}", check_roundtrip(name, obj, legacy=True))
check("legacy format with tied weights", check_roundtrip("tied", tied.state_dict(), legacy=True,
                                                        expect_tied={"encoder.weight": "decoder.weight"}))
check("pickle protocol 4 (frames, memoize, short strings)", check_roundtrip("p4", training | {"history": 1}, protocol=4))
check("legacy format, pickle protocol 4", check_roundtrip("p4l", mlp.state_dict(), legacy=True, protocol=4))

# A bare tensor is named after the file.
torch.save(torch.randn(3, 3), path("lonely.pt"))
rc, out = convert(path("lonely.pt"), path("lonely.safetensors"))
got, meta = st_read(path("lonely.safetensors")) if rc == 0 else ({}, {})
tap(rc == 0 and list(got) == ["lonely"] and got["lonely"][0] == raw(torch.load(path("lonely.pt"))),
    "a checkpoint that is one tensor names it after the file", out)

# A bigger checkpoint: the chunked copy and writeback path.
bigsd = {"w%d" % i: torch.randn(1 << 20) for i in range(24)} | {"h": torch.randn(2048, 1024).half()}
check("a 100 MB checkpoint converts bit-identical", check_roundtrip("big", bigsd))

# --------------------------------------------------------------------------
# numpy
# --------------------------------------------------------------------------

arrays = {
    "f32": np.random.rand(4, 5).astype(np.float32), "i64": np.arange(12).reshape(3, 4),
    "b": np.random.rand(6) > 0.5, "u16": np.arange(7, dtype=np.uint16), "f16": np.ones((2, 3), np.float16),
    "fort": np.asfortranarray(np.random.rand(3, 4)), "zero_d": np.array(2.5),
    "i8": np.arange(-5, 5, dtype=np.int8), "u64": np.arange(3, dtype=np.uint64),
}


def np_problems(expect, got):
    bad = []
    if set(expect) != set(got):
        bad.append("names differ: %s vs %s" % (sorted(expect), sorted(got)))
    for k in set(expect) & set(got):
        a = expect[k].copy(order="C")
        data, dtype, shape = got[k]
        if tuple(a.shape) != shape or a.tobytes() != data:
            bad.append("%s: shape %s/%s or bytes differ (%s)" % (k, a.shape, shape, dtype))
    return bad


bad = []
for k, a in arrays.items():
    np.save(path(k + ".npy"), a)
    rc, out = convert(path(k + ".npy"), path(k + "-npy.safetensors"))
    if rc != 0:
        bad.append("%s: exit %d %s" % (k, rc, out))
        continue
    got, meta = st_read(path(k + "-npy.safetensors"))
    bad += np_problems({k: np.load(path(k + ".npy"))}, got)
    if meta.get("format") != "np":
        bad.append("%s: format %r" % (k, meta.get("format")))
check(".npy arrays (C and Fortran order, 0-d, bool, unsigned) convert bit-identical, named after the file", bad)

np.savez(path("arrays.npz"), **arrays)
rc, out = convert(path("arrays.npz"), path("arrays.safetensors"))
bad = ["exit %d %s" % (rc, out)] if rc else np_problems(dict(np.load(path("arrays.npz"))), st_read(path("arrays.safetensors"))[0])
check(".npz: every member converts, named without .npy", bad)

np.savez_compressed(path("comp.npz"), a=arrays["f32"])
rc, out = convert(path("comp.npz"), path("comp.safetensors"))
tap(rc == 1 and not os.path.exists(path("comp.safetensors")) and "compressed" in out,
    "a compressed .npz is refused (exit 1, no output)", out)
np.save(path("obj.npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
rc, out = convert(path("obj.npy"), path("obj.safetensors"))
tap(rc == 1 and not os.path.exists(path("obj.safetensors")), "an object array is refused", out)
np.save(path("be.npy"), np.arange(4, dtype=">i4"))
rc, out = convert(path("be.npy"), path("be.safetensors"))
tap(rc == 1 and not os.path.exists(path("be.safetensors")) and "dtype" in out, "a big-endian array is refused naming the dtype", out)

# --------------------------------------------------------------------------
# Refused: the scan allows these, the converter cannot write them faithfully.
# --------------------------------------------------------------------------


def refused(name, obj, words, legacy=False):
    src, dst = path(name + ".pt"), path(name + ".safetensors")
    if isinstance(obj, bytes):
        open(src, "wb").write(obj)
    else:
        torch.save(obj, src, _use_new_zipfile_serialization=not legacy)
    rc, out = convert(src, dst)
    ok = rc == 1 and not os.path.exists(dst) and all(w in out for w in words)
    tap(ok, f"refused with exit 1 and no output: {name}", "exit %d\n%s" % (rc, out))


refused("sparse", {"w": torch.randn(2), "emb.sparse": torch.eye(3).to_sparse()}, ["emb.sparse", "sparse"])
refused("complex", {"z": torch.randn(3, dtype=torch.cfloat)}, ["'z'", "ComplexFloatStorage"])
refused("quantized", {"q": torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8)}, ["q"])
refused("numpy-scalar", {"w": torch.randn(2), "acc": np.float64(0.5)}, ["acc"])
over = torch.arange(20.0)
refused("overlapping-slices", {"a": over[0:10], "b": over[5:15]}, ["share", "'a'", "'b'"])
refused("no-tensors", {"epoch": 3}, ["no tensors"])
refused("whole-module", torch.nn.Linear(2, 2), [])
refused("plain-pickle", b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.", ["not a PyTorch checkpoint"])

# A storage record compressed in the zip: torch reads it, the converter copies only stored bytes.
buf = io.BytesIO()
torch.save({"w": torch.zeros(1000)}, buf)
zin = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w") as zout:
    for info in zin.infolist():
        zout.writestr(info.filename, zin.read(info.filename),
                      compress_type=zipfile.ZIP_DEFLATED if "/data/" in info.filename else zipfile.ZIP_STORED)
refused("deflated-storage", zbuf.getvalue(), ["compressed"])

# --------------------------------------------------------------------------
# Hostile fixtures: denied by the scan, nothing written.
# --------------------------------------------------------------------------

mal = os.path.join(FIXTURES, "malicious") if FIXTURES else ""
if mal and os.path.isdir(mal):
    bad, count = [], 0
    for root, _dirs, files in os.walk(mal):
        for f in sorted(files):
            src = os.path.join(root, f)
            dst = path("mal-%d.safetensors" % count)
            count += 1
            rc, out = convert(src, dst)
            if rc != 1 or os.path.exists(dst):
                bad.append("%s: exit %d, output %s" % (os.path.relpath(src, mal), rc, os.path.exists(dst)))
    tap(count > 0 and not bad, f"all {count} malicious fixtures are refused (exit 1) and leave no output", "\n".join(bad))
    cands = [os.path.join(r, f) for r, _d, fs in os.walk(mal) for f in fs if f.endswith((".pt", ".bin", ".pth"))]
    if cands:
        rc, out = convert(cands[0], path("one.safetensors"))
        tap(rc == 1 and "DENY" in out and "refused" in out, "a denied file's findings are printed", out)
else:
    tap(True, "malicious fixtures not generated (run make check TESTS=tests/fixtures-check.sh) # SKIP")

# --------------------------------------------------------------------------
# Output and input errors: exit 2.
# --------------------------------------------------------------------------

src = path("mlp.pt")
dst = path("exists.safetensors")
open(dst, "wb").write(b"keep me")
rc, out = convert(src, dst)
tap(rc == 2 and open(dst, "rb").read() == b"keep me" and "--force" in out, "an existing output is refused without --force", out)
rc, out = convert(src, dst, "--force")
tap(rc == 0 and st_read(dst)[0], "--force replaces it with the conversion", out)
rc, out = convert(src, path("no/such/dir/out.safetensors"))
tap(rc == 2 and "does not exist" in out, "a missing output directory is exit 2", out)
rc, out = convert(path("missing.pt"), path("x.safetensors"))
tap(rc == 2 and "missing.pt" in out and not os.path.exists(path("x.safetensors")), "a missing input is exit 2", out)
rc, out = convert(TMP, path("x.safetensors"))
tap(rc == 2 and not os.path.exists(path("x.safetensors")), "a directory as input is exit 2", out)
rc, out = convert(src, TMP)
tap(rc == 2 and "directory" in out, "a directory as output is exit 2", out)
if os.geteuid() != 0:
    unreadable = path("unreadable.pt")
    shutil.copy(src, unreadable)
    os.chmod(unreadable, 0)
    rc, out = convert(unreadable, path("u.safetensors"))
    tap(rc == 2 and "unreadable.pt" in out, "an unreadable input is exit 2 naming it", out)
elif shutil.which("setpriv"):
    # As root, permissions do not apply: run the conversion as nobody instead.
    d = tempfile.mkdtemp(prefix="modelgate-convert-nobody-")
    os.chmod(d, 0o777)
    unreadable = os.path.join(d, "unreadable.pt")
    shutil.copy(src, unreadable)
    os.chmod(unreadable, 0)
    p = subprocess.run([shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", MODELGATE,
                        "convert", unreadable, os.path.join(d, "u.safetensors")], capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    tap(p.returncode == 2 and "unreadable.pt" in out and "Permission denied" in out and
        not os.path.exists(os.path.join(d, "u.safetensors")), "an unreadable input is exit 2 naming it (as nobody)", out)
    shutil.rmtree(d)
else:
    tap(True, "unreadable input (running as root without setpriv) # SKIP")
rc, out = convert(src, src, "--force")
tap(rc == 2 and "same file" in out, "converting a file onto itself is refused", out)
leftovers = [f for f in os.listdir(TMP) if f.startswith(".modelgate-convert")]
tap(not leftovers, "no temporary files are left behind", leftovers)

# The result passes the scanner.
p = subprocess.run([MODELGATE, "scan", path("training.safetensors"), path("arrays.safetensors")], capture_output=True, timeout=60)
tap(p.returncode == 0 and b"ALLOW safetensors" in p.stdout, "the outputs scan as allowed safetensors", p.stdout.decode())

shutil.rmtree(TMP)
print("1..%d" % len(results))
sys.exit(0 if all(results) else 1)
