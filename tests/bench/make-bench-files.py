#!/usr/bin/python3
"""Writes the benchmark inputs into OUTDIR (deterministic):
  small-opcodes.pkl   ~32 MB protocol-2 pickle of small ints, floats, short strings
                      and tuples: one opcode every few bytes, the VM's worst case
  legacy-250mb.pt     a legacy (non-zip) torch checkpoint of ~250 MB
  joblib-250mb.pkl    a joblib dump of ~250 MB of numpy arrays (inline raw bytes)
  zip-100mb.pt, zip-2gb.pt   torch zip checkpoints of two sizes, same structure"""
import os
import pickle
import sys

import joblib
import numpy as np
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def write_once(name, fn):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        fn(path + ".tmp")
        os.rename(path + ".tmp", path)


def small_opcodes(path):
    rows = [(i, i * 0.5, "k%d" % (i % 1000), i % 7 == 0) for i in range(1_100_000)]
    with open(path, "wb") as f:
        pickle.dump(rows, f, protocol=2)


def legacy(path):
    sd = {"layer%d.weight" % i: torch.zeros(1024, 1024) for i in range(60)}
    torch.save(sd, path, _use_new_zipfile_serialization=False)


def joblib_file(path):
    arrays = {"a%d" % i: np.zeros((1024, 1024), dtype=np.float32) for i in range(60)}
    joblib.dump(arrays, path)


def zip_of(mb):
    def make(path):
        n = mb // 4  # 4 MB tensors
        sd = {"layer%d.weight" % i: torch.zeros(1024, 1024) for i in range(n)}
        torch.save(sd, path)
    return make


write_once("small-opcodes.pkl", small_opcodes)
write_once("legacy-250mb.pt", legacy)
write_once("joblib-250mb.pkl", joblib_file)
write_once("zip-100mb.pt", zip_of(100))
write_once("zip-2gb.pt", zip_of(2048))
