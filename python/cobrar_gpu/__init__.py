"""cobrar_gpu: CoBraR, DeepMF and the study's baselines trained and evaluated on any GPU through WGSL
compute shaders -- the `cobrar-gpu` command line's library, called from Python.

Every function takes the CLI's flags as keyword arguments (``batch_size=512`` is ``--batch-size 512``,
``arch=(512, 64)`` is ``--arch 512,64``, ``no_validation=True`` is ``--no-validation``), validated by
the CLI's own parser with the CLI's messages, and runs the code the CLI command runs. Ids are strings,
as in the CLI's files.

    import cobrar_gpu as cg
    ds = cg.Dataset.builtin("synthetic")            # or Dataset.from_pandas(df) / from_path(path)
    run = cg.train(ds, model="cobrar", arch=(512, 64), epochs=5, out="runs/demo")
    run.metrics["test"]                             # metrics.json
    run.recommend(["u1"], k=10)                     # DataFrame: user, rank, item, score
    run.recommend(["u1"], exclude_train=False)      # training items ranked too (--include-train)
    ids, users = run.user_embeddings()              # as `cobrar-gpu export` writes them
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

# As the CLI's main: Mesa's device-select layer only prints a warning on machines without a desktop
# session, and an empty COBRAR_DATA_DIR means "no data directory" (clap would refuse the empty value).
os.environ.setdefault("NODEVICE_SELECT", "1")
if os.environ.get("COBRAR_DATA_DIR") == "":
    del os.environ["COBRAR_DATA_DIR"]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import _native  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CobrarError",
    "InvalidArgument",
    "DataError",
    "CobrarRuntimeError",
    "SelftestFailed",
    "Dataset",
    "Run",
    "adapters",
    "selftest",
    "train",
    "resume",
    "compare",
    "reproduce",
]

PathLike = Union[str, "os.PathLike[str]"]


class CobrarError(Exception):
    """Base class of every error this package raises (the CLI's one error line is the message)."""


class InvalidArgument(CobrarError, ValueError):
    """A flag or argument the CLI refuses, with the CLI's message (``--lr`` out of range, an unknown
    flag, an --out that holds another run, a model that does not fit the adapter's limits...)."""


class DataError(CobrarError, ValueError):
    """Input data the readers or the preprocessing refuse (a bad line, an empty split, a DataFrame with
    NaN ids...)."""


class CobrarRuntimeError(CobrarError, RuntimeError):
    """A failure while working: the GPU, the disk, a diverged run, a damaged run directory."""


class SelftestFailed(CobrarRuntimeError):
    """A selftest check failed on an adapter: the message names it and the seed that replays it;
    ``report`` holds the selftest's JSON report (a dict) when there is one."""

    def __init__(self, message: str, report: Optional[dict] = None):
        super().__init__(message)
        self.report = report


_ERRORS = {
    "invalid": InvalidArgument,
    "data": DataError,
    "runtime": CobrarRuntimeError,
    "selftest": SelftestFailed,
}


def _call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Calls the native module, re-raising its errors as this package's classes."""
    try:
        return fn(*args, **kwargs)
    except _native.NativeError as e:
        kind, message = e.args
        raise _ERRORS.get(kind, CobrarRuntimeError)(message) from None


def _flags(flags: Dict[str, Any]) -> List[str]:
    """Keyword arguments as the CLI's flags: ``batch_size=512`` → ``--batch-size 512``; ``True`` → the
    bare flag, ``False``/``None`` → nothing; a list or tuple → comma-separated."""
    argv: List[str] = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        elif isinstance(value, float):
            argv += [flag, repr(value)]
        else:
            argv += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return argv


def _adapter(adapter: Optional[str]) -> List[str]:
    """``adapter`` as the CLI's global flag. ``"auto"`` (every function's default) and None give no
    flag: the CLI's own default, which is COBRAR_ADAPTER when that is set, else the automatic choice
    (``--adapter auto`` on the command line would override COBRAR_ADAPTER)."""
    if adapter is None or str(adapter).strip().lower() == "auto":
        return []
    return ["--adapter", str(adapter)]


def _cli_help(command: str) -> str:
    """The CLI's --help of ``command`` with flags written as keyword arguments."""
    text = _native.help(command)
    return re.sub(r"--([a-z][a-z0-9-]*)", lambda m: m.group(1).replace("-", "_") + "=", text)


# ---------------------------------------------------------------------------------------------------
# Data


def _id_strings(col: "pd.Series", what: str) -> "pd.Series":
    """A DataFrame's id column as the strings the CLI reads, refusing what would not round-trip."""
    if len(col) and col.isna().any():
        bad = col.index[col.isna()][0]
        raise DataError(
            f"{what} column {col.name!r} has {int(col.isna().sum())} missing value(s) (NaN/None), "
            f"the first at index {bad!r}: every interaction needs an id"
        )
    if pd.api.types.is_bool_dtype(col):
        raise DataError(f"{what} column {col.name!r} holds booleans, not ids")
    if pd.api.types.is_float_dtype(col):
        if not np.all(np.mod(col.to_numpy(), 1) == 0):
            raise DataError(
                f"{what} column {col.name!r} holds non-integer numbers ({col.dtype}): ids must be "
                "integers or strings"
            )
        col = col.astype("int64")
    if pd.api.types.is_integer_dtype(col):
        return col.astype("int64").astype(str)
    kinds = {type(v).__name__ for v in col}
    if kinds - {"str"}:
        if kinds <= {"int", "int64", "int32", "uint32", "uint64"}:
            return col.astype("int64").astype(str)
        raise DataError(
            f"{what} column {col.name!r} mixes value types ({', '.join(sorted(kinds))}): ids must be "
            "all integers or all strings"
        )
    col = col.astype(str)
    if col.str.contains(r"[\t\r\n]", regex=True).any():
        raise DataError(f"{what} column {col.name!r} has ids containing a tab or a line break")
    return col


class Dataset:
    """A dataset loaded, preprocessed and split exactly as the CLI's ``--dataset`` flags do it (implicit
    feedback, iterative k-core, the seeded per-user split). Make one with :meth:`from_pandas`,
    :meth:`from_path` or :meth:`builtin`; the preprocessing flags are keyword arguments: ``kcore``
    (5), ``min_rating``, ``test_ratio`` (0.2), ``val_ratio`` (0.125), ``split_seed`` (42), and
    ``cold_start="items"|"users"`` with ``cold_ratio`` (0.2) for a cold-start split."""

    def __init__(self, native: Any, argv: Optional[List[str]], columns: Tuple[str, str]):
        self._native = native
        self._argv = argv  # the CLI's dataset flags (None for a DataFrame)
        self._columns = columns

    @classmethod
    def from_pandas(
        cls,
        df: "pd.DataFrame",
        user: str = "user_id",
        item: str = "item_id",
        rating: Optional[str] = None,
        *,
        name: str = "dataframe",
        **flags: Any,
    ) -> "Dataset":
        """Interactions from a DataFrame: one row per (user, item) with an optional rating column.
        Ids may be integers or strings (read as strings, as from a file); with ``rating``, ratings
        below ``min_rating`` and negative ratings are dropped as the CLI drops them. ``flags``: the
        preprocessing flags (``kcore``, ``min_rating``, ``test_ratio``, ``val_ratio``,
        ``split_seed``, ``cold_start="items"|"users"``, ``cold_ratio``)."""
        if not isinstance(df, pd.DataFrame):
            raise InvalidArgument(f"from_pandas needs a pandas DataFrame, got {type(df).__name__}")
        for role, col in (("user", user), ("item", item), ("rating", rating)):
            if col is not None and col not in df.columns:
                raise InvalidArgument(
                    f"{role}={col!r}: no such column (the frame has {', '.join(map(str, df.columns))})"
                )
        if len(df) == 0:
            raise DataError(f"{name}: the DataFrame has no rows")
        users = _id_strings(df[user], "user")
        items = _id_strings(df[item], "item")
        text = users + "\t" + items
        header = "user\titem"
        argv = ["--sep", "tab", "--header"] + _flags(flags)
        if rating is not None:
            r = df[rating]
            if not pd.api.types.is_numeric_dtype(r) or pd.api.types.is_bool_dtype(r):
                raise DataError(f"rating column {rating!r} is not numeric ({r.dtype})")
            if r.isna().any():
                raise DataError(
                    f"rating column {rating!r} has {int(r.isna().sum())} missing value(s) (NaN)"
                )
            text = text + "\t" + r.astype("float64").map(repr)
            header += "\trating"
            argv += ["--rating-col", "2"]
        data = (header + "\n" + text.str.cat(sep="\n") + "\n").encode()
        native = _call(_native.load_dataset, argv, data, name)
        return cls(native, None, (user, item))

    @classmethod
    def from_path(cls, path: PathLike, format: Optional[str] = None, **flags: Any) -> "Dataset":
        """A ratings file, a directory holding train.tsv/val.tsv/test.tsv, or a dataset name (ml-1m,
        ml-100k, ...) looked up in ``data_dir`` / COBRAR_DATA_DIR -- the CLI's ``--dataset``. ``format``
        is ``--format`` (detected when None); ``flags``: ``sep``, ``user_col``, ``item_col``,
        ``rating_col``, ``header`` and the preprocessing flags."""
        argv = ["--dataset", os.fspath(path)] + _flags(dict(format=format, **flags))
        return cls._load(argv)

    @classmethod
    def builtin(cls, name: str = "synthetic", **flags: Any) -> "Dataset":
        """``"synthetic"``: the small dataset built into the library (the CLI's default); or a
        synthetic workload with a real dataset's shape (``"ml-1m"``, ``"amazon-baby"``, ``"ml-20m"``:
        the CLI's ``--workload``)."""
        argv = [] if name == "synthetic" else ["--workload", name]
        return cls._load(argv + _flags(flags))

    @classmethod
    def _load(cls, argv: List[str]) -> "Dataset":
        if "--json" in argv:
            raise InvalidArgument("unexpected argument 'json' found")
        return cls(_call(_native.load_dataset, argv), argv, ("user", "item"))

    @property
    def name(self) -> str:
        """The dataset's name (as in run directories and reports)."""
        return self._native.name

    @property
    def n_users(self) -> int:
        """Users after preprocessing."""
        return self._native.n_users

    @property
    def n_items(self) -> int:
        """Items after preprocessing."""
        return self._native.n_items

    def stats(self) -> dict:
        """The paper's Table 1 numbers before and after each preprocessing step: ``data stats --json``
        (``raw``, ``implicit``, ``kcore``, ``preprocessed`` and the ``split``'s counts)."""
        return json.loads(self._native.stats_json())

    def split(self) -> Tuple["pd.DataFrame", "pd.DataFrame", "pd.DataFrame"]:
        """The train, validation and test interactions with original ids (as ``data split`` writes
        them), columns named as the DataFrame's (``user``/``item`` otherwise)."""
        user_ids, item_ids, parts = self._native.split()
        users, items = np.asarray(user_ids, dtype=object), np.asarray(item_ids, dtype=object)
        ucol, icol = self._columns
        return tuple(  # type: ignore[return-value]
            pd.DataFrame({ucol: users[u], icol: items[i]}) for u, i in parts
        )

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}: {self.n_users} users, {self.n_items} items)"


# ---------------------------------------------------------------------------------------------------
# Training


class _Events:
    """Receives the training loop's events: a tqdm bar per epoch when tqdm is installed, and the
    user's ``on_epoch(record)``."""

    def __init__(self, progress: bool, on_epoch: Optional[Callable[[dict], Any]]):
        self.on_epoch = on_epoch
        self.bar = None
        self.tqdm = None
        self.max_epochs = 0
        if progress:
            try:
                from tqdm.auto import tqdm

                self.tqdm = tqdm
            except ImportError:
                pass

    def __call__(self, kind: str, *args: Any) -> None:
        if kind == "begin":
            _, self.max_epochs, self.steps = args
        elif kind == "step" and self.tqdm is not None:
            epoch, step, steps = args
            if self.bar is None:
                self.bar = self.tqdm(total=steps, desc=f"epoch {epoch}/{self.max_epochs}",
                                     unit="step", leave=False)
            self.bar.update(step - self.bar.n)
        elif kind == "epoch":
            record = json.loads(args[0])
            self.close()
            if self.tqdm is not None:
                self.tqdm.write(_epoch_line(record))
            if self.on_epoch is not None:
                self.on_epoch(record)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _epoch_line(r: dict) -> str:
    line = f"epoch {r['epoch']:>3}  loss {r['loss']:.5f}  {r['steps_per_s']:.1f} steps/s"
    v = r.get("validation")
    if v and v.get("cutoffs"):
        c = v["cutoffs"][0]
        line += f"  val NDCG@{c['k']} {c['ndcg']:.4f}"
    return line + ("  *best" if r.get("best") else "")


def _watched(fn: Callable, *args: Any, progress: bool, on_epoch: Optional[Callable]) -> Any:
    events = _Events(progress, on_epoch)
    try:
        return _call(fn, *args, events)
    finally:
        events.close()


def _quiet(progress: bool, events_have_bar: bool) -> List[str]:
    # With tqdm the bar is Python's; without it the CLI's own progress lines go to stderr.
    return ["--quiet"] if (not progress or events_have_bar) else []


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401

        return True
    except ImportError:
        return False


def train(
    dataset: Dataset,
    model: str = "cobrar",
    arch: Optional[Sequence[int]] = None,
    adapter: Optional[str] = "auto",
    out: Optional[PathLike] = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    on_epoch: Optional[Callable[[dict], Any]] = None,
    **flags: Any,
) -> "Run":
    """Trains ``model`` on ``dataset`` with early stopping on validation NDCG@5, evaluates the best
    epoch on test and writes the run directory ``out`` (default ``runs/DATASET-MODEL-TIME``), exactly
    as ``cobrar-gpu train`` does; returns the :class:`Run`.

    ``arch``: the layer widths, e.g. ``(512, 64)``; None (the default): the model's default, (512, 64)
    for CoBraR and DeepMF, (64,) for BPR-MF and LightGCN, (600, 200) for MultVAE. ``adapter``:
    ``"auto"`` (the default: COBRAR_ADAPTER when it is set, else discrete, then integrated, virtual,
    CPU adapters -- what ``cobrar-gpu`` does without ``--adapter``), ``vulkan``, ``metal``, ``dx12``,
    ``gl``, part of an adapter's name or its index in :func:`adapters`. Every function taking
    ``adapter`` reads it so.
    ``progress``: a tqdm bar per epoch when tqdm is installed (else the CLI's progress lines on
    stderr). ``on_epoch(record)`` is called after every epoch with its train_log.jsonl record (a
    dict); an exception it raises stops training, as Ctrl-C does: at the next step, leaving a run
    :func:`resume` continues. Training releases the GIL.

    Raises :class:`InvalidArgument` (a ValueError) for flags the CLI refuses, :class:`DataError` for
    bad data, :class:`CobrarRuntimeError` for failures while training.
    """
    if not isinstance(dataset, Dataset):
        raise InvalidArgument(f"train needs a cobrar_gpu.Dataset, got {type(dataset).__name__}")
    argv = _adapter(adapter) + _flags(dict(model=model, arch=arch, **flags))
    argv += _flags(dict(out=out, overwrite=overwrite))
    argv += _quiet(progress, _has_tqdm())
    path, _ = _watched(_native.train, dataset._native, argv, progress=progress, on_epoch=on_epoch)
    return Run(path, adapter=adapter)


def resume(
    run_dir: PathLike,
    adapter: Optional[str] = "auto",
    *,
    progress: bool = True,
    on_epoch: Optional[Callable[[dict], Any]] = None,
) -> "Run":
    """Continues the interrupted run in ``run_dir`` from its last completed epoch (``cobrar-gpu train
    --resume``); it ends with the same weights and metrics as an uninterrupted run. ``adapter``: as in
    :func:`train`."""
    argv = _adapter(adapter) + ["--resume", os.fspath(run_dir)] + _quiet(progress, _has_tqdm())
    path, _ = _watched(_native.resume, argv, progress=progress, on_epoch=on_epoch)
    return Run(path, adapter=adapter)


class Run:
    """A run directory written by :func:`train` or ``cobrar-gpu train`` (see the README's "A run
    directory"). Inference (``evaluate``, ``recommend``, embeddings) runs on the GPU from the saved
    weights, as the CLI's commands do, on ``adapter`` (as in :func:`train`)."""

    def __init__(self, path: PathLike, adapter: Optional[str] = "auto"):
        self.path = Path(path)
        self.adapter = adapter

    @classmethod
    def load(cls, path: PathLike, adapter: Optional[str] = "auto") -> "Run":
        """Opens the run directory ``path`` (a finished or an interrupted run); its inference runs on
        ``adapter`` (as in :func:`train`)."""
        p = Path(path)
        if not (p / "config.json").is_file():
            raise InvalidArgument(f"{p}: not a run directory (no config.json)")
        return cls(p, adapter)

    @property
    def finished(self) -> bool:
        """Whether the run finished (it has metrics.json)."""
        return (self.path / "metrics.json").is_file()

    @property
    def config(self) -> dict:
        """config.json: everything to rebuild the model."""
        return json.loads((self.path / "config.json").read_text())

    @property
    def metrics(self) -> dict:
        """metrics.json: validation and test metrics at every cutoff, best epoch, timings, adapter..."""
        if not self.finished:
            raise CobrarRuntimeError(
                f"{self.path} is an unfinished run (no metrics.json): continue it with "
                f"cobrar_gpu.resume({str(self.path)!r})"
            )
        return json.loads((self.path / "metrics.json").read_text())

    @property
    def history(self) -> "pd.DataFrame":
        """The training log (train_log.jsonl), one row per epoch; validation metrics as ``val_ndcg@5``,
        ``val_recall@10``, ... columns."""
        rows = []
        log = self.path / "train_log.jsonl"
        lines = log.read_text().splitlines() if log.exists() else []
        for line in lines:
            if not line.strip():
                continue
            r = json.loads(line)
            v = r.pop("validation", None) or {}
            for c in v.get("cutoffs", []):
                for key, value in c.items():
                    if key != "k":
                        r[f"val_{key}@{c['k']}"] = value
            rows.append(r)
        return pd.DataFrame(rows)

    def evaluate(
        self, split: Optional[str] = "test", cutoffs: Optional[Sequence[int]] = None
    ) -> dict:
        """Recomputes every metric from the saved weights (``cobrar-gpu evaluate --json``): the
        ``split``'s metrics (``"test"`` or ``"validation"``), or all as ``{split: metrics}`` with
        ``split=None``. On a ``cold_start`` split (``Dataset.builtin(cold_start="items")``),
        ``split="cold_start"`` gives the warm and cold halves ranked apart: ``{"side", "entities",
        "halves": [{"name": "warm"|"cold", "rows": [{"scorer", "metrics" | "not_scored"}]}]}`` (the
        model's row, then the MostPop and feature-popularity floors). ``cutoffs``: default the run's."""
        if split not in (None, "test", "validation", "cold_start"):
            raise InvalidArgument(
                f"split={split!r}: expected 'test', 'validation', 'cold_start' or None"
            )
        argv = _adapter(self.adapter) + ["--checkpoint", str(self.path)] + _flags(
            dict(cutoffs=cutoffs)
        )
        result = json.loads(_call(_native.evaluate, argv))
        if split is None:
            return result
        if split not in result:
            what = "cold-start split" if split == "cold_start" else f"{split} split"
            raise InvalidArgument(f"the run has no {what}")
        return result[split]

    def recommend(
        self,
        users: Union[None, str, int, Iterable[Union[str, int]]] = None,
        k: int = 10,
        exclude_train: bool = True,
    ) -> "pd.DataFrame":
        """Top-``k`` recommendations (``cobrar-gpu recommend``) for ``users`` (original ids; one id, a
        list, or None for every user): a DataFrame with ``user``, ``rank`` (from 1), ``item`` and
        ``score`` (float32), the same lists and scores as the CLI. With ``exclude_train=True`` (the
        default) a user's training items are never recommended; ``exclude_train=False`` ranks every
        item, training items included, with the same scores and tie rule (``recommend
        --include-train``)."""
        argv = _adapter(self.adapter) + ["--checkpoint", str(self.path), "-k", str(k)]
        if not exclude_train:
            argv.append("--include-train")
        all_users = users is None
        if all_users:
            argv += ["--user", "-"]  # replaced by every user natively (the CLI's --all)
        else:
            if isinstance(users, (str, int, np.integer)):
                users = [users]
            for u in users:
                argv += ["--user", str(u)]
        u, ranks, items, scores = _call(_native.recommend, argv, all_users)
        return pd.DataFrame({"user": u, "rank": ranks.astype(np.int64), "item": items,
                             "score": scores})

    def user_embeddings(self) -> Tuple[List[str], np.ndarray]:
        """Every user's final embedding with its original id, exactly as ``cobrar-gpu export`` writes
        them (``<stem>.users.txt`` and ``.users.npy``): ``(ids, float32 array [n_users, d])``,
        L2-normalised for the cosine models, so an inner-product search ranks as the model does."""
        ids, users, _, _ = self._embeddings()
        return ids, users

    def item_embeddings(self) -> Tuple[List[str], np.ndarray]:
        """Every item's final embedding with its original id, as :meth:`user_embeddings`."""
        _, _, ids, items = self._embeddings()
        return ids, items

    def _embeddings(self) -> Tuple[List[str], np.ndarray, List[str], np.ndarray]:
        return _call(_native.embeddings, _adapter(self.adapter), str(self.path))

    def resume(self, *, progress: bool = True, on_epoch: Optional[Callable] = None) -> "Run":
        """Continues this interrupted run (:func:`resume`)."""
        return resume(self.path, self.adapter, progress=progress, on_epoch=on_epoch)

    def __repr__(self) -> str:
        state = "finished" if self.finished else "unfinished"
        return f"Run({str(self.path)!r}, {state})"


# ---------------------------------------------------------------------------------------------------
# Reports, adapters, selftest


def compare(
    runs: Iterable[Union[Run, PathLike]], cutoff: int = 5, allow_different_splits: bool = False
) -> "pd.DataFrame":
    """The study's Table 2 (``cobrar-gpu compare``) over run directories: NDCG, ARP, PopRSP and
    Coverage per dataset and run at ``cutoff``, with the paired t-tests' p-values (the CLI's CSV
    columns); the markdown table, significance marks included, is in ``.attrs["markdown"]``."""
    import io

    paths = [str(r.path if isinstance(r, Run) else os.fspath(r)) for r in runs]
    argv = paths + _flags(dict(cutoff=cutoff, allow_different_splits=allow_different_splits))
    csv, markdown = _call(_native.compare, argv)
    df = pd.read_csv(io.StringIO(csv))
    df.attrs["markdown"] = markdown
    return df


def _markdown_tables(text: str) -> List["pd.DataFrame"]:
    """Every pipe table of a markdown report, as DataFrames of strings."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            block.append(line.strip())
            continue
        if len(block) >= 2:
            cells = [[c.strip() for c in row.strip("|").split("|")] for row in block]
            header, body = cells[0], [r for r in cells[2:] if len(r) == len(cells[0])]
            tables.append(pd.DataFrame(body, columns=header))
        block = []
    return tables


def reproduce(
    dataset: Dataset,
    grid: str = "fast",
    out: PathLike = "study",
    *,
    models: Optional[Sequence[str]] = None,
    adapter: Optional[str] = "auto",
    progress: bool = True,
    **flags: Any,
) -> Dict[str, Any]:
    """The study in one call (``cobrar-gpu reproduce``): every model's ``grid`` (``fast``, ``paper``,
    ``study`` or a TOML file) trained under the study's protocol into ``out/runs/`` (a finished run is
    never trained twice; an interrupted one resumes), then the reports. Returns the tables as
    DataFrames: ``table2`` (the CSV, with p-values), ``parameters``, ``timing`` and ``runs`` (the
    markdown reports' tables, as strings), and ``out``. The dataset must come from
    :meth:`Dataset.from_path` or :meth:`Dataset.builtin` (reproduce names its runs by those flags).
    ``adapter``: as in :func:`train`."""
    if dataset._argv is None:
        raise InvalidArgument(
            "reproduce names its runs by the dataset's flags: use Dataset.from_path or "
            "Dataset.builtin (write the DataFrame to a file first)"
        )
    argv = _adapter(adapter) + dataset._argv + ["--out", os.fspath(out), "--grid", grid]
    argv += _flags(dict(models=models, **flags))
    _watched(_native.reproduce, argv, progress=False, on_epoch=None)
    root = Path(out)
    result: Dict[str, Any] = {"out": root}
    if (root / "table2.csv").exists():
        result["table2"] = pd.read_csv(root / "table2.csv")
    for name in ("parameters", "timing", "runs"):
        f = root / f"{name}.md"
        if f.exists():
            tables = _markdown_tables(f.read_text())
            result[name] = tables[0] if len(tables) == 1 else tables
    return result


def adapters(adapter: Optional[str] = "auto") -> List[dict]:
    """Every GPU adapter wgpu sees (``cobrar-gpu adapters --json``): name, backend, device type,
    driver, the limits that matter, features. Raises :class:`InvalidArgument` when ``adapter`` (as in
    :func:`train`: with ``"auto"``, COBRAR_ADAPTER when it is set) selects none."""
    return json.loads(_call(_native.adapters, _adapter(adapter)))


def selftest(
    adapter: Optional[str] = "auto",
    quick: bool = False,
    checks: Optional[Sequence[str]] = None,
    seed: Optional[int] = None,
) -> dict:
    """Is this GPU computing correctly? (``cobrar-gpu selftest``): every kernel, every model's steps
    and the ranking against their CPU twins on ``adapter`` (as in :func:`train`; ``"all"``: every
    adapter). Returns the JSON report (a dict); a failing check raises :class:`SelftestFailed` naming
    it and the seed that replays it (the report in its ``report``)."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "selftest.json"
        argv = _adapter(adapter) + _flags(dict(quick=quick, seed=seed))
        for c in checks or []:
            argv += ["--check", c]
        argv += ["--json", str(report_path), "--overwrite"]
        try:
            _call(_native.selftest, argv)
        except SelftestFailed as e:
            report = json.loads(report_path.read_text()) if report_path.exists() else None
            raise SelftestFailed(str(e), report) from None
        return json.loads(report_path.read_text())


# help(cobrar_gpu.train) lists every flag: the CLI's own help, flags written as keywords (flags added
# to the CLI appear here without a change to this file).
try:
    train.__doc__ = (train.__doc__ or "") + "\n    The CLI's flags, as keywords:\n\n" + _cli_help("train")
    reproduce.__doc__ = (reproduce.__doc__ or "") + "\n    The CLI's flags:\n\n" + _cli_help(
        "reproduce"
    )
except Exception:  # pragma: no cover - help text is a convenience
    pass
