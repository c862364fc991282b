#!/usr/bin/env python3
"""Load a cobrar-gpu run directory in PyTorch and score items for one user.

    pip install torch safetensors
    python3 examples/load_in_pytorch.py runs/synthetic-cobrar-XXXX u0007 5

Rebuilds both encoders from `model.safetensors` with plain torch ops (the tensor layout is in
README.md) and the training split, and prints the user's top items with their cosine scores — the same
numbers `cobrar-gpu recommend` prints (checked to 6 digits on a CoBraR run).
"""
import sys

import torch
from safetensors.torch import load_file


def main(run_dir, user, k=10):
    w = load_file(f"{run_dir}/model.safetensors")
    users = open(f"{run_dir}/ids/users.txt").read().split("\n")[:-1]
    items = open(f"{run_dir}/ids/items.txt").read().split("\n")[:-1]
    uid = {u: n for n, u in enumerate(users)}
    iid = {i: n for n, i in enumerate(items)}
    by_user, by_item = {}, {}
    for line in open(f"{run_dir}/split/train.tsv"):
        u, i = line.rstrip("\n").split("\t")[:2]
        by_user.setdefault(uid[u], []).append(iid[i])
        by_item.setdefault(iid[i], []).append(uid[u])

    def branch(x, side):
        prefix = "branch" if "branch.0.weight" in w else f"{side}_branch"
        layer = 0
        while f"{prefix}.{layer}.weight" in w:
            x = torch.relu(torch.nn.functional.linear(x, w[f"{prefix}.{layer}.weight"], w[f"{prefix}.{layer}.bias"]))
            layer += 1
        return x

    def embed(table, rows, side):
        h = torch.relu(w[f"{table}.weight"][rows].sum(0) + w[f"{table}.bias"])
        return branch(h, side)

    u = uid[user]
    eu = embed("user_projection", by_user.get(u, []), "user")
    ei = torch.stack([embed("item_projection", by_item.get(i, []), "item") for i in range(len(items))])
    cos = (ei @ eu) / (ei.norm(dim=1).clamp_min(1e-8) * eu.norm().clamp_min(1e-8))
    mu = 1e-4  # the model's clamp; see config.json
    scores = cos.clamp_min(mu)
    scores[by_user.get(u, [])] = -float("inf")  # training items are never recommended
    top = torch.topk(scores, k)
    for rank, (s, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
        print(f"{user}\t{rank}\t{items[i]}\t{s:.6f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10)
