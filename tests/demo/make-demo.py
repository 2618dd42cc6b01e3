#!/usr/bin/python3
"""Writes the README demo: two PyTorch checkpoints as a Hub download leaves them.

  OUTDIR/bert-tiny-clean/pytorch_model.bin      a plain state_dict (allowed)
  OUTDIR/bert-tiny-trojan/pytorch_model.bin     the same weights plus an object whose
                                                unpickling calls os.system("true")
The payload is harmless; what matters is that torch.load would run it."""
import os
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
print(f"demo models written under {out}/")
