#!/usr/bin/env python3
"""seeds.py — fills OUT/<target>/ with seed inputs for the fuzz targets, taken from
the generated fixtures (tests/fixtures-out, never committed as blobs) by content:
whole files for the format they are, plus what sits inside them (zip members, the
pickle of an object .npy, a safetensors JSON header, an .h5 model_config, a GGUF or
tokenizer_config chat template). Only the standard library; h5py when present.

    seeds.py FIXTURES OUT
"""
import io
import json
import os
import struct
import sys
import tarfile
import zipfile
import zlib

# Bigger seeds slow every mutation down and teach the fuzzer nothing new.
SEED_MAX = 256 << 10

TARGETS = ("scan pickle joblib zip archive tar npy safetensors gguf onnx keras hdf5 lfs template json "
           "policy manifest worker-proto patterns").split()


class Seeds:
    def __init__(self, out):
        self.out = out
        self.n = {t: 0 for t in TARGETS}
        self.seen = set()
        for t in TARGETS:
            os.makedirs(os.path.join(out, t), exist_ok=True)

    def add(self, target, data, name):
        if not data or len(data) > SEED_MAX or (target, data) in self.seen:
            return
        self.seen.add((target, data))
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in name)[-80:]
        with open(os.path.join(self.out, target, "fx-%04d-%s" % (self.n[target], safe)), "wb") as fh:
            fh.write(data)
        self.n[target] += 1


def looks_pickle(d):
    return d[:1] == b"\x80" or (d[:1] in (b"c", b"(", b"}", b"]", b"N", b"I", b"K") and b"." in d[-4:])


def gguf_strings(d):
    """The string values of a little-endian GGUF v2/v3 header (best effort)."""
    out = []
    try:
        if d[:4] != b"GGUF":
            return out
        pos = 8
        _, n_kv = struct.unpack_from("<QQ", d, pos)
        pos += 16
        fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

        def value(t, pos):
            if t in fixed:
                return None, pos + fixed[t]
            if t == 8:
                (n,) = struct.unpack_from("<Q", d, pos)
                return d[pos + 8:pos + 8 + n], pos + 8 + n
            if t == 9:
                et, n = struct.unpack_from("<IQ", d, pos)
                pos += 12
                for _ in range(min(n, 1 << 16)):
                    _, pos = value(et, pos)
                return None, pos
            raise ValueError(t)

        for _ in range(min(n_kv, 4096)):
            (kl,) = struct.unpack_from("<Q", d, pos)
            key = d[pos + 8:pos + 8 + kl]
            pos += 8 + kl
            (t,) = struct.unpack_from("<I", d, pos)
            v, pos = value(t, pos + 4)
            if v is not None and key.startswith(b"tokenizer.chat_template"):
                out.append(v)
    except (struct.error, ValueError):
        pass
    return out


def json_seeds(s, d, name):
    s.add("json", d, name)
    try:
        doc = json.loads(d)
    except ValueError:
        return
    s.add("keras", d, name)
    if isinstance(doc, dict):
        ct = doc.get("chat_template")
        if isinstance(ct, str):
            s.add("template", ct.encode(), name + "-chat_template")
        elif isinstance(ct, list):
            for i, item in enumerate(ct):
                if isinstance(item, dict) and isinstance(item.get("template"), str):
                    s.add("template", item["template"].encode(), "%s-chat_template-%d" % (name, i))


def classify(s, d, name, depth=0):
    """Adds d (a file or a member) to the targets whose parser reads it."""
    if depth == 0:
        s.add("scan", d, name)
    if d[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        s.add("zip", d, name)
        s.add("archive", d, name)
        if depth < 2:
            try:
                with zipfile.ZipFile(io.BytesIO(d)) as z:
                    for info in z.infolist()[:64]:
                        if info.file_size <= SEED_MAX:
                            classify(s, z.read(info), name + "-" + info.filename, depth + 1)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error):
                pass
    elif d[:4] == b"GGUF":
        s.add("gguf", d, name)
        for i, t in enumerate(gguf_strings(d)):
            s.add("template", t, "%s-chat_template-%d" % (name, i))
    elif d[:8] == b"\x89HDF\r\n\x1a\n" or b"\x89HDF\r\n\x1a\n" in d[:1 << 16]:
        s.add("hdf5", d, name)
    elif d[:6] == b"\x93NUMPY":
        s.add("npy", d, name)
        hl = struct.unpack_from("<H" if d[6] == 1 else "<I", d, 8)[0] if len(d) > 12 else 0
        body = d[10 + hl:] if d[6] == 1 else d[12 + hl:]
        if looks_pickle(body):
            s.add("pickle", body, name + "-objects")
    elif len(d) >= 8 and d[8:9] == b"{" and struct.unpack_from("<Q", d)[0] < len(d):
        s.add("safetensors", d, name)
        n = struct.unpack_from("<Q", d)[0]
        json_seeds(s, d[8:8 + n], name + "-header")
    elif len(d) > 262 and d[257:262] == b"ustar":
        s.add("tar", d, name)
        try:
            with tarfile.open(fileobj=io.BytesIO(d)) as t:
                for m in t.getmembers()[:64]:
                    f = t.extractfile(m) if m.isfile() else None
                    if f:
                        classify(s, f.read(SEED_MAX + 1), name + "-" + m.name, depth + 1)
        except (tarfile.TarError, OSError, EOFError):
            pass
    elif d[:1] == b"\x78" and depth < 2:
        try:
            inner = zlib.decompress(d)
            s.add("joblib", d, name)
            classify(s, inner, name + "-inflated", depth + 1)
        except zlib.error:
            pass
    elif name.endswith(".onnx") or name.endswith("model.onnx"):
        s.add("onnx", d, name)
    elif d.lstrip()[:8] == b"version ":
        s.add("lfs", d, name)
    elif looks_pickle(d):
        s.add("joblib" if b"NumpyArrayWrapper" in d else "pickle", d, name)
        if b"NumpyArrayWrapper" in d:
            s.add("pickle", d, name)
    else:
        try:
            text = d.decode("utf-8")
        except UnicodeDecodeError:
            return
        if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
            json_seeds(s, d, name)
        elif "{{" in text or "{%" in text or "{#" in text:
            s.add("template", d, name)


def main():
    fixtures, out = sys.argv[1], sys.argv[2]
    s = Seeds(out)
    for top in ("benign", "malicious"):
        for root, dirs, files in os.walk(os.path.join(fixtures, top)):
            dirs.sort()
            for f in sorted(files):
                path = os.path.join(root, f)
                with open(path, "rb") as fh:
                    d = fh.read(SEED_MAX + 1)
                classify(s, d, os.path.relpath(path, fixtures).replace("/", "-"))
                if f.endswith(".h5"):
                    try:
                        import h5py
                        with h5py.File(path, "r") as h:
                            cfg = h.attrs.get("model_config")
                            if cfg is not None:
                                cfg = cfg.encode() if isinstance(cfg, str) else bytes(cfg)
                                s.add("keras", cfg, f + "-model_config")
                                s.add("json", cfg, f + "-model_config")
                    except Exception:   # no h5py, or a file h5py refuses
                        pass
    for f in ("sklearn-policy.json",):
        p = os.path.join(fixtures, f)
        if os.path.exists(p):
            with open(p, "rb") as fh:
                s.add("policy", fh.read(), f)
    print(" ".join("%s:%d" % (t, s.n[t]) for t in TARGETS if s.n[t]))


if __name__ == "__main__":
    main()
