"""Every public function on the built-in data and on a tiny DataFrame, the error paths, and the
agreement with the CLI (same bits, same lists, same embeddings)."""

import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

import cobrar_gpu as cg
from conftest import FLAGS, cli_flags


def tiny_frame(n_users=40, n_items=30, per_user=8):
    rng = np.random.default_rng(3)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            rows.append((u + 100, f"item-{i}", float(rng.integers(1, 6))))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


# --- adapters, selftest, help ----------------------------------------------------------------------


def test_adapters_lists_what_the_cli_lists(cli):
    listed = cg.adapters()
    assert listed and {"name", "backend", "device_type"} <= set(listed[0])
    assert listed == json.loads(cli("adapters", "--json").stdout)
    with pytest.raises(cg.InvalidArgument):
        cg.adapters(adapter="no-such-adapter-anywhere")


def test_selftest_returns_the_report():
    report = cg.selftest(quick=True, checks=["kernel:spmm"], seed=5)
    assert report["seed"] == 5 and report["adapters"]
    with pytest.raises(cg.CobrarError):
        cg.selftest(checks=["no-such-check"])


def test_help_lists_train_flags_as_keywords():
    doc = cg.train.__doc__
    for flag in ("batch_size=", "lr=", "negatives=", "no_validation="):
        assert flag in doc


# --- datasets --------------------------------------------------------------------------------------


def test_builtin_stats_and_split(ds, cli):
    stats = ds.stats()
    assert stats == json.loads(cli("data", "stats", "--json").stdout)
    train, val, test = ds.split()
    assert list(train.columns) == ["user", "item"]
    assert len(train) + len(val) + len(test) == stats["preprocessed"]["interactions"]
    assert (ds.n_users, ds.n_items) == (stats["preprocessed"]["users"], stats["preprocessed"]["items"])


def test_from_pandas_matches_the_same_file_through_the_cli_reader(tmp):
    df = tiny_frame()
    a = cg.Dataset.from_pandas(df, rating="rating", kcore=2, min_rating=2)
    path = tmp / "tiny.tsv"
    df.to_csv(path, sep="\t", header=False, index=False)
    b = cg.Dataset.from_path(path, sep="tab", rating_col=2, kcore=2, min_rating=2)
    assert (a.n_users, a.n_items) == (b.n_users, b.n_items)
    for x, y in zip(a.split(), b.split()):
        assert x.to_numpy().tolist() == y.to_numpy().tolist()
    assert list(a.split()[0].columns) == ["user_id", "item_id"]
    assert a.stats()["min_rating"] == 2


@pytest.mark.parametrize(
    "frame, error",
    [
        (pd.DataFrame({"user_id": [1, None, 3], "item_id": [1, 2, 3]}), "missing value"),
        (pd.DataFrame({"user_id": [], "item_id": []}), "no rows"),
        (pd.DataFrame({"user_id": [1, "b", 3], "item_id": [1, 2, 3]}), "mixes value types"),
        (pd.DataFrame({"user_id": [1.5, 2, 3], "item_id": [1, 2, 3]}), "non-integer"),
        (pd.DataFrame({"user_id": ["a\tb", "c", "d"], "item_id": [1, 2, 3]}), "tab"),
    ],
)
def test_bad_frames_are_refused(frame, error):
    with pytest.raises(cg.DataError, match=error) as e:
        cg.Dataset.from_pandas(frame)
    assert isinstance(e.value, ValueError)


def test_bad_dataset_arguments(tmp):
    with pytest.raises(cg.InvalidArgument, match="no such column"):
        cg.Dataset.from_pandas(tiny_frame(), user="uid")
    with pytest.raises(cg.InvalidArgument):
        cg.Dataset.from_pandas([(1, 2)])
    with pytest.raises(ValueError, match="--test-ratio"):
        cg.Dataset.builtin(test_ratio=1.5)
    bad = tmp / "bad.dat"
    bad.write_text("1::2::5::0\nnot a line\n")
    with pytest.raises(cg.DataError, match="bad.dat"):
        cg.Dataset.from_path(bad)


# --- training and the CLI's validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [dict(lr=-1), dict(mu=1.5), dict(no_such_flag=3), dict(model="nope"), dict(arch=(10, 3))],
)
def test_bad_flags_raise_the_clis_message(ds, cli, tmp, flags):
    with pytest.raises(cg.InvalidArgument) as e:
        cg.train(ds, out=tmp / "never", progress=False, **flags)
    p = cli("train", *cli_flags(flags), "--out", tmp / "never", "--quiet", check=False)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == "error: " + str(e.value)
    assert not (tmp / "never").exists()


def test_dataset_flags_belong_to_the_dataset(ds):
    with pytest.raises(cg.InvalidArgument, match="kcore"):
        cg.train(ds, kcore=3, progress=False)


def test_python_and_cli_runs_are_identical(py_run, cli_run):
    assert (py_run.path / "model.safetensors").read_bytes() == (
        cli_run.path / "model.safetensors"
    ).read_bytes()
    a, b = py_run.metrics, cli_run.metrics
    assert a["test"] == b["test"] and a["validation"] == b["validation"]
    assert a["best_epoch"] == b["best_epoch"]


def test_metrics_history_evaluate(py_run):
    m = py_run.metrics
    assert m["epochs_run"] == FLAGS["epochs"]
    h = py_run.history
    assert list(h["epoch"]) == [1, 2] and "val_ndcg@5" in h.columns
    test = py_run.evaluate()
    assert test == m["test"]  # recomputed from the saved weights: the same numbers
    both = py_run.evaluate(split=None, cutoffs=[3])
    assert set(both) == {"validation", "test"} and both["test"]["cutoffs"][0]["k"] == 3
    with pytest.raises(cg.InvalidArgument):
        py_run.evaluate(split="train")
    with pytest.raises(cg.InvalidArgument, match="no cold-start split"):
        py_run.evaluate(split="cold_start")


def test_cold_start_split_evaluates_warm_and_cold_apart(tmp, cli):
    cold = cg.Dataset.builtin("synthetic", cold_start="items", cold_ratio=0.1)
    run = cg.train(cold, model="mostpop", out=tmp / "cold", progress=False)
    c = run.evaluate(split="cold_start")
    assert c["side"] == "items" and [h["name"] for h in c["halves"]] == ["warm", "cold"]
    assert c == json.loads(cli("evaluate", "--checkpoint", run.path, "--json").stdout)["cold_start"]
    floor = {r["scorer"]: r for r in c["halves"][1]["rows"]}
    assert "metrics" in floor["mostpop"] and "needs" in floor["feature popularity (floor)"]["not_scored"]


def test_recommend_equals_the_cli(py_run, cli, ds):
    users = list(ds.split()[0]["user"].unique()[:5])
    recs = py_run.recommend(users, k=7)
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert recs["score"].dtype == np.float32
    args = [a for u in users for a in ("--user", u)]
    tsv = cli("recommend", "--checkpoint", py_run.path, *args, "-k", 7).stdout.splitlines()
    assert tsv[0] == "user\trank\titem\tscore"
    mine = [f"{u}\t{r}\t{i}\t{s:.6f}" for u, r, i, s in recs.itertuples(index=False)]
    assert mine == tsv[1:]
    # Training items are never recommended.
    train = ds.split()[0]
    seen = set(zip(train["user"], train["item"]))
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"]))
    everyone = py_run.recommend(k=2)
    assert len(everyone) == 2 * ds.n_users
    with pytest.raises(cg.InvalidArgument, match="not in the run's data"):
        py_run.recommend(["nobody"])
    with pytest.raises(cg.InvalidArgument, match="-k must be"):
        py_run.recommend(users, k=0)


def test_recommend_with_training_items_equals_the_cli(py_run, cli, ds):
    train = ds.split()[0]
    seen = set(zip(train["user"], train["item"]))
    users = list(train["user"].unique()[:40])
    k = 10
    every = py_run.recommend(users, k=k, exclude_train=False)
    args = [a for u in users for a in ("--user", u)]
    tsv = cli("recommend", "--checkpoint", py_run.path, *args, "-k", k, "--include-train")
    mine = [f"{u}\t{r}\t{i}\t{s:.6f}" for u, r, i, s in every.itertuples(index=False)]
    assert mine == tsv.stdout.splitlines()[1:]
    assert len(every) == k * len(users)
    # The same scores as the model's: inner products of the exported (unit) embeddings, clamped at mu.
    uids, U = py_run.user_embeddings()
    iids, V = py_run.item_embeddings()
    urow, irow = {u: n for n, u in enumerate(uids)}, {i: n for n, i in enumerate(iids)}
    mu = py_run.config["train"]["mu"]
    want = np.maximum(
        np.einsum("nd,nd->n", U[[urow[u] for u in every["user"]]].astype(np.float64),
                  V[[irow[i] for i in every["item"]]].astype(np.float64)), mu)
    assert np.allclose(every["score"], want, atol=2e-5)
    # Training items that score high now appear; without them the list is the default one.
    filtered = py_run.recommend(users, k=k)
    changed = 0
    for u in users:
        a = every[every["user"] == u]
        b = filtered[filtered["user"] == u]
        kept = [(i, s) for i, s in zip(a["item"], a["score"]) if (u, i) not in seen]
        assert kept == list(zip(b["item"], b["score"]))[: len(kept)]
        if any((u, i) in seen for i in a["item"]):
            changed += 1
            assert list(a["item"]) != list(b["item"])
    assert changed > 0, "no user had a training item among the top-k"
    # One id, or every user, as with the default.
    assert len(py_run.recommend(users[0], k=3, exclude_train=False)) == 3
    assert len(py_run.recommend(k=1, exclude_train=False)) == ds.n_users


def test_adapter_auto_is_the_clis_default(py_run, cli, monkeypatch):
    import inspect

    for fn in (cg.train, cg.resume, cg.Run, cg.Run.load, cg.reproduce, cg.adapters, cg.selftest):
        assert inspect.signature(fn).parameters["adapter"].default == "auto", fn
    monkeypatch.delenv("COBRAR_ADAPTER", raising=False)
    listed = cg.adapters()
    assert listed == cg.adapters("auto") == cg.adapters(None)
    before = py_run.recommend(k=1)
    # "auto" is the CLI without --adapter: COBRAR_ADAPTER still chooses (here: nothing matches).
    monkeypatch.setenv("COBRAR_ADAPTER", "no-such-adapter-anywhere")
    p = cli("adapters", check=False)
    assert p.returncode != 0
    line = [x for x in p.stderr.splitlines() if x.startswith("error: ")][0]
    for adapter in ("auto", None):
        with pytest.raises(cg.InvalidArgument) as e:
            cg.adapters(adapter)
        assert "error: " + str(e.value) == line
    with pytest.raises(cg.CobrarError, match="no-such-adapter-anywhere"):
        cg.Run.load(py_run.path).recommend(k=1)
    # A named adapter overrides it, as --adapter does.
    name = listed[0]["name"]
    assert cg.adapters(name) == listed
    pd.testing.assert_frame_equal(cg.Run.load(py_run.path, adapter=name).recommend(k=1), before)


def test_embeddings_equal_the_cli_export(py_run, cli, tmp):
    out = tmp / "export" / "emb.safetensors"
    cli("export", "--checkpoint", py_run.path, "--out", out)
    for side, (ids, values) in (("users", py_run.user_embeddings()),
                                ("items", py_run.item_embeddings())):
        assert ids == (out.parent / f"emb.{side}.txt").read_text().splitlines()
        saved = np.load(out.parent / f"emb.{side}.npy")
        assert values.dtype == np.float32 and np.array_equal(values, saved)
    # Cosine model: rows are unit vectors, so an inner-product search ranks as the model does.
    _, users = py_run.user_embeddings()
    assert np.allclose(np.linalg.norm(users, axis=1), 1, atol=1e-5)


def test_unfinished_and_missing_runs(tmp):
    with pytest.raises(cg.InvalidArgument, match="not a run directory"):
        cg.Run.load(tmp / "nothing-here")


def test_compare_and_a_baseline(ds, py_run, tmp):
    pop = cg.train(ds, model="mostpop", out=tmp / "mostpop", progress=False)
    table = cg.compare([py_run, pop])
    assert len(table) == 2 and any(c.startswith("p") or "_p" in c for c in table.columns), table.columns
    assert "|" in table.attrs["markdown"]
    with pytest.raises(cg.InvalidArgument):
        cg.compare([py_run], cutoff=7)


def test_reproduce_writes_the_tables(tmp):
    ds = cg.Dataset.builtin("synthetic")
    result = cg.reproduce(ds, grid="fast", out=tmp / "study", models=["mostpop"])
    assert isinstance(result["table2"], pd.DataFrame) and len(result["table2"]) == 1
    assert (tmp / "study" / "report.md").exists()
    with pytest.raises(cg.InvalidArgument):
        cg.reproduce(cg.Dataset.from_pandas(tiny_frame()), out=tmp / "never")


# --- callbacks and Ctrl-C --------------------------------------------------------------------------


def test_on_epoch_sees_every_epoch_and_can_stop_training(ds, tmp):
    seen = []
    run = cg.train(ds, out=tmp / "cb", progress=True, on_epoch=seen.append, **FLAGS)
    assert [r["epoch"] for r in seen] == [1, 2] and run.finished

    def boom(record):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        cg.train(ds, out=tmp / "boom", progress=False, on_epoch=boom, **FLAGS)
    assert (tmp / "boom" / "config.json").exists()
    assert not (tmp / "boom" / "metrics.json").exists()


def test_ctrl_c_leaves_a_resumable_run_that_ends_as_an_uninterrupted_one(ds, tmp, cli_run):
    def interrupt(record):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after the first epoch

    out = tmp / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        cg.train(ds, out=out, progress=False, on_epoch=interrupt, **FLAGS)
    assert (out / "config.json").exists() and (out / "state").is_dir()
    assert not (out / "metrics.json").exists() and not cg.Run.load(out).finished
    assert len(cg.Run.load(out).history) == 1
    run = cg.resume(out, progress=False)
    assert run.finished and len(run.history) == 2
    # Same weights, byte for byte, as the CLI's uninterrupted run with the same flags.
    assert (out / "model.safetensors").read_bytes() == (
        cli_run.path / "model.safetensors"
    ).read_bytes()


def test_a_signal_while_the_gpu_trains_stops_at_the_next_step(ds, tmp):
    import threading

    out = tmp / "signal"
    flags = dict(FLAGS, max_steps_per_epoch=60, epochs=2)
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="interrupted"):
            cg.train(ds, out=out, progress=False, **flags)
    finally:
        timer.cancel()
    # Stopped, unlocked and resumable (the resume itself is the test above's).
    assert (out / "config.json").exists() and not (out / "metrics.json").exists()
    assert not (out / ".cobrar-gpu.lock").exists()
