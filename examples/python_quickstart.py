"""The Python package in one page: train CoBraR on the built-in data, evaluate, recommend, and use the
embeddings for an inner-product search in NumPy (and PyTorch, when it is installed).

    pip install ./python
    python examples/python_quickstart.py [OUT_DIR]

On a 2-core machine with the software Vulkan driver this takes a few minutes (pass fewer epochs for
less: the flags are train's, as keywords).
"""

import sys

import numpy as np

import cobrar_gpu as cg

out = sys.argv[1] if len(sys.argv) > 1 else "runs/python-quickstart"

print([a["name"] for a in cg.adapters()])
ds = cg.Dataset.builtin("synthetic")  # or cg.Dataset.from_pandas(df, user="user_id", item="item_id")
print(ds, ds.stats()["preprocessed"])

# Every `cobrar-gpu train` flag is a keyword (help(cg.train) lists them); validated as the CLI does.
run = cg.train(ds, model="cobrar", arch=(512, 64), epochs=3, out=out, overwrite=True,
               on_epoch=lambda r: print(f"  epoch {r['epoch']}: loss {r['loss']:.4f}"))
test = {c["k"]: c for c in run.metrics["test"]["cutoffs"]}
print(f"test NDCG@10 {test[10]['ndcg']:.4f}, Recall@10 {test[10]['recall']:.4f}")
print(run.history[["epoch", "loss", "val_ndcg@5"]])

# Top-10 lists with original ids (a user's training items excluded), as `cobrar-gpu recommend`.
train_split = ds.split()[0]
user = train_split["user"].iloc[0]
recs = run.recommend([user], k=10)
print(recs)

# The embeddings as `cobrar-gpu export` writes them: L2-normalised for CoBraR, so the inner product
# is the model's cosine and a plain inner-product search (NumPy here; Faiss alike) gives its ranking.
user_ids, U = run.user_embeddings()
item_ids, V = run.item_embeddings()
scores = V @ U[user_ids.index(user)]
seen = set(train_split.loc[train_split["user"] == user, "item"])
order = [i for i in np.argsort(-scores, kind="stable") if item_ids[i] not in seen][:10]
found = [item_ids[i] for i in order]
print("inner-product search:", found)
print(f"agrees with run.recommend on {sum(a == b for a, b in zip(found, recs['item']))} of 10 ranks")

# Without the exclusion every item is ranked, the user's training items included (`recommend
# --include-train`): the unfiltered inner-product search.
every = run.recommend([user], k=10, exclude_train=False)
top = [item_ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
print(f"unfiltered: {sum(i in seen for i in every['item'])} training items in the top 10; agrees "
      f"with the search on {sum(a == b for a, b in zip(top, every['item']))} of 10 ranks")

try:  # PyTorch, when installed: the same arrays as tensors, no copy
    import torch

    users_t, items_t = torch.from_numpy(U), torch.from_numpy(V)
    print("torch:", tuple(users_t.shape), tuple(items_t.shape), users_t.dtype)
except ImportError:
    print("(PyTorch is not installed: torch.from_numpy(U) would give the tensors)")
