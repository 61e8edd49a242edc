"""The dataset interface: four small hooks and one place that wraps their errors.

A dataset implements ``_load``, ``_save``, ``_exists`` and ``_describe``;
the public methods around them all go through :class:`_Failing`, so a failure
always names the dataset at fault and chains the original error, the way
pypa/build wraps whatever a backend raises.
"""

from __future__ import annotations

import abc
import importlib.util
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, NamedTuple

from kilnflow._redact import redact_url, redact_values
from kilnflow.errors import DatasetError

__all__ = ["AbstractDataset", "Version", "require"]


class Version(NamedTuple):
    """The versions a versioned dataset loads and saves; ``None`` means "latest" / "new".

    Classes written for other frameworks that take a ``version`` argument
    receive one of these when their catalog entry says ``versioned: true``.
    """

    load: str | None
    save: str | None


class _Failing:
    """Turn any error but a ``DatasetError`` into one that names ``dataset``.

    The one wrapper for foreign errors around every dataset method: a class,
    not a generator, because it runs on every load and save of every node.
    """

    __slots__ = ("action", "dataset")

    def __init__(self, action: str, dataset: AbstractDataset) -> None:
        #: What failed, with ``{}`` where the dataset's label goes.
        self.action = action
        self.dataset = dataset

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, DatasetError) or not isinstance(exc, Exception):
            return
        raise DatasetError(
            f"Could not {self.action.format(self.dataset._label())}: {_reason(exc)}"
        ) from exc


class AbstractDataset(abc.ABC):
    """Loads and saves one piece of data.

    Subclasses implement ``_load``, ``_save``, ``_describe`` and, when a
    cheap check exists, ``_exists`` (without it a dataset counts as existing
    and a missing input surfaces as a load error naming it); ``_release``
    when they hold data in memory. The public methods turn any other
    exception into a :class:`~kilnflow.errors.DatasetError` that names the
    dataset and chains the original; a ``DatasetError`` raised by a hook
    passes through unchanged, so hooks should name the dataset with
    ``self._label()``.
    """

    #: Name used in messages; the catalog sets it, so subclasses must not use
    #: ``name`` for anything else.
    name: str | None = None
    #: The catalog entry's ``metadata:`` mapping, kept for tools and viewers;
    #: the dataset itself never reads it.
    metadata: Mapping[str, Any] | None = None

    def load(self) -> Any:
        """Return the data."""
        with _Failing("load {}", self):
            return self._load()

    def save(self, data: Any) -> None:
        """Store ``data``, replacing what the dataset held before."""
        with _Failing("save {}", self):
            self._save(data)

    def exists(self) -> bool:
        """Tell whether a ``load`` would find data."""
        with _Failing("check whether {} exists", self):
            return self._exists()

    def release(self) -> None:
        """Free what the dataset holds in memory; the runner calls it after last use."""
        with _Failing("release {}", self):
            self._release()

    def describe(self) -> dict[str, Any]:
        """Return what identifies the dataset in logs and messages, never credentials.

        Passwords inside URLs (``s3://key:secret@bucket``) and values under
        secret-looking keys are hidden, whatever a subclass describes.
        """
        return redact_values(self._describe())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if v is not None)
        return f"{type(self).__name__}({fields})"

    def _label(self) -> str:
        """Name the dataset in messages: ``dataset 'cars' (CSVDataset(...))``."""
        if self.name is None:
            return f"dataset {self!r}"
        return f"dataset {self.name!r} ({self!r})"

    @abc.abstractmethod
    def _load(self) -> Any: ...

    @abc.abstractmethod
    def _save(self, data: Any) -> None: ...

    def _exists(self) -> bool:
        return True

    @abc.abstractmethod
    def _describe(self) -> dict[str, Any]: ...

    def _release(self) -> None:
        return None


_FOUND: set[str] = set()


def require(owner: str, extra: str, *modules: str | tuple[str, ...]) -> None:
    """Raise a ``DatasetError`` naming the ``pip install`` line when a module is missing.

    ``owner`` names the dataset in the message (``"pandas.ExcelDataset for
    'in.xlsx'"``); each of ``modules`` is a module name or a tuple of
    alternatives, any one of which will do. Nothing is imported: datasets
    call this when constructed, so a missing library fails only the
    pipelines that use the dataset, before any of their nodes runs.
    """
    for alternatives in modules:
        names = (alternatives,) if isinstance(alternatives, str) else alternatives
        if not any(_installed(module) for module in names):
            raise DatasetError(
                f"{owner} needs {' or '.join(names)}, which is not installed; install it "
                f'with pip install "kilnflow[{extra}]".'
            )


def _installed(module: str) -> bool:
    """Tell whether ``module`` can be imported, without importing it."""
    if module in sys.modules:
        return sys.modules[module] is not None
    if module not in _FOUND and importlib.util.find_spec(module) is not None:
        _FOUND.add(module)
    return module in _FOUND


def _reason(exc: BaseException) -> str:
    """Render a cause for a message; our own errors already read as sentences."""
    text = redact_url(str(exc))
    if isinstance(exc, DatasetError) or not text:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
