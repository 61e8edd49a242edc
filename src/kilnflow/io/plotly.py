"""Plotly figures: ``type: plotly.JSONDataset`` and friends in a catalog.

plotly is imported only when figures are read or written; constructing one
of these without it says to ``pip install "kilnflow[plotly]"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, BinaryIO, ClassVar

from kilnflow.errors import DatasetError

from ._file import FileDataset, text_io

__all__ = ["HTMLDataset", "JSONDataset", "PlotlyDataset"]


class _PlotlyDataset(FileDataset):
    _extra = "plotly"
    _requires: ClassVar[tuple[str | tuple[str, ...], ...]] = ("plotly",)


class JSONDataset(_PlotlyDataset):
    """A plotly figure as JSON; args go to ``plotly.io.read_json``/``write_json``.

    A load returns a ``plotly.graph_objects.Figure``.
    """

    def _load_from(self, file: BinaryIO) -> Any:
        import plotly.io as pio

        with text_io(file) as text:
            return pio.read_json(text, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        import plotly.io as pio

        with text_io(file) as text:
            pio.write_json(data, text, **self._save_args)


class HTMLDataset(_PlotlyDataset):
    """A plotly figure as a standalone HTML page; ``save_args`` go to ``write_html``.

    A load returns the page as a ``str``, to embed or serve.
    """

    def _load_from(self, file: BinaryIO) -> Any:
        with text_io(file) as text:
            return text.read()

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        with text_io(file) as text:
            data.write_html(text, **self._save_args)


class PlotlyDataset(JSONDataset):
    """A figure built from a DataFrame by plotly express, stored as JSON.

    ``plotly_args`` say how: ``type`` is a plotly express function (``bar``,
    ``scatter``, ...), ``fig`` its keyword arguments and ``layout`` what
    ``update_layout`` receives. Saving a DataFrame builds the figure;
    saving a figure stores it as it is. A load returns the figure.
    """

    _requires = ("plotly", "pandas")

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        *,
        plotly_args: Mapping[str, Any],
        load_args: Mapping[str, Any] | None = None,
        save_args: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        fs_args: Mapping[str, Any] | None = None,
        versioned: bool = False,
        load_version: str | None = None,
        save_version: str | None = None,
    ) -> None:
        super().__init__(
            filepath,
            load_args=load_args,
            save_args=save_args,
            credentials=credentials,
            fs_args=fs_args,
            versioned=versioned,
            load_version=load_version,
            save_version=save_version,
        )
        if not isinstance(plotly_args, Mapping) or not isinstance(plotly_args.get("type"), str):
            raise DatasetError(
                f"plotly.PlotlyDataset for {self._filepath!r}: plotly_args needs a 'type' "
                "naming a plotly express function, e.g. {type: bar, fig: {x: a, y: b}}."
            )
        self._plotly_args = dict(plotly_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        import plotly.express as px
        import plotly.graph_objects as go

        if not isinstance(data, go.Figure):
            kind = self._plotly_args["type"]
            make = getattr(px, kind, None)
            if not callable(make):
                raise DatasetError(
                    f"Cannot save {self._label()}: plotly express has no function {kind!r}; "
                    "fix plotly_args.type."
                )
            data = make(data, **self._plotly_args.get("fig", {}))
            data.update_layout(self._plotly_args.get("layout", {}))
        super()._save_to(file, data)

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "plotly_args": self._plotly_args}


def __dir__() -> list[str]:
    return __all__
