#!/usr/bin/python3
"""Writes the README demo: model files as a Hub download leaves them.

  OUTDIR/bert-tiny-clean/pytorch_model.bin      a plain state_dict (allowed)
  OUTDIR/bert-tiny-trojan/pytorch_model.bin     the same weights plus an object whose
                                                unpickling calls os.system("true")
  OUTDIR/tiny-nc/model.safetensors              safetensors whose metadata says
                                                cc-by-nc-4.0 (a restricted license)
  OUTDIR/tiny-lfs/model.safetensors             a Git LFS pointer left in place of
                                                the weights by a failed download
The payload is harmless; what matters is that torch.load would run it. The last two
are the field report's other failure kinds."""
import hashlib
import json
import os
import struct
import sys

import torch

out = sys.argv[1] if len(sys.argv) > 1 else "demo-out"
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
state = model.state_dict()


class Trojan:
    def __reduce__(self):
        return (os.system, ("true",))


for name, obj in (("bert-tiny-clean", state), ("bert-tiny-trojan", {"state_dict": state, "hook": Trojan()})):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    torch.save(obj, os.path.join(d, "pytorch_model.bin"))

# safetensors by hand (its spec: u64 header length, JSON header, data).
weights = state["0.weight"].numpy().tobytes()
header = json.dumps({"__metadata__": {"license": "cc-by-nc-4.0"},
                     "0.weight": {"dtype": "F32", "shape": list(state["0.weight"].shape),
                                  "data_offsets": [0, len(weights)]}}).encode()
header += b" " * (-len(header) % 8)
os.makedirs(os.path.join(out, "tiny-nc"), exist_ok=True)
with open(os.path.join(out, "tiny-nc", "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + weights)

os.makedirs(os.path.join(out, "tiny-lfs"), exist_ok=True)
with open(os.path.join(out, "tiny-lfs", "model.safetensors"), "w") as f:
    f.write("version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{hashlib.sha256(b'the real weights').hexdigest()}\nsize 548105171\n")
print(f"demo models written under {out}/")
