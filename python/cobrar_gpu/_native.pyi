"""Type stubs of the native extension (pyo3). Private: the public API is `cobrar_gpu`'s, which wraps
these calls, turns `NativeError` into its exception classes and validates arguments through the
CLI's own parsers (every `argv` here is a `cobrar-gpu` command line without the program name)."""

from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

class NativeError(Exception):
    """args: (kind, message); kind is "invalid", "data", "runtime" or "selftest"."""

class NativeDataset:
    """A loaded, preprocessed and split dataset (the library's `Dataset`)."""

    @property
    def name(self) -> str: ...
    @property
    def n_users(self) -> int: ...
    @property
    def n_items(self) -> int: ...
    @property
    def embedded(self) -> bool: ...
    def stats_json(self) -> str:
        """`data stats --json` of this dataset."""
    def split(
        self,
    ) -> tuple[list[str], list[str], list[tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]]]:
        """(user ids, item ids, [(users, items) of train, validation, test]) with dense indices."""

def load_dataset(
    argv: list[str], data: Optional[bytes] = None, name: Optional[str] = None
) -> NativeDataset:
    """The dataset the flags in `argv` name, or `data` (delimited text) read with them."""

def train(
    dataset: NativeDataset, argv: list[str], events: Optional[Callable[..., Any]] = None
) -> tuple[str, str]:
    """`train` with `argv`'s flags on `dataset` (GIL released); returns (run directory, outcome)."""

def resume(argv: list[str], events: Optional[Callable[..., Any]] = None) -> tuple[str, str]:
    """`train --resume DIR`."""

def reproduce(argv: list[str], events: Optional[Callable[..., Any]] = None) -> None:
    """`reproduce` with `argv`'s flags."""

def evaluate(argv: list[str]) -> str:
    """`evaluate --json`: the metrics as JSON text."""

def recommend(
    argv: list[str], all_users: bool = False
) -> tuple[list[str], npt.NDArray[np.uint32], list[str], npt.NDArray[np.float32]]:
    """`recommend` (with `--include-train` in `argv`: every item ranked, training items included):
    (user ids, ranks, item ids, scores), one row per recommendation; `all_users`: every user."""

def embeddings(
    argv: list[str], checkpoint: str, normalised: bool = True
) -> tuple[list[str], npt.NDArray[np.float32], list[str], npt.NDArray[np.float32]]:
    """`export`'s embeddings of the run in `checkpoint`: (user ids, users, item ids, items)."""

def compare(argv: list[str]) -> tuple[str, str]:
    """`compare`: (CSV, markdown) of the Table 2 layout."""

def selftest(argv: list[str]) -> None:
    """`selftest`; raises NativeError("selftest", …) when a check fails."""

def adapters(argv: list[str]) -> str:
    """`adapters --json`."""

def help(command: str) -> str:
    """`cobrar-gpu COMMAND --help`."""

def version() -> tuple[str, str]:
    """(version, git revision) of the library."""
