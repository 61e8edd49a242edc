"""Figures as images: ``type: matplotlib.MatplotlibDataset`` in a catalog.

matplotlib is imported only when figures are read or written; constructing
the dataset without it says to ``pip install "kilnflow[matplotlib]"``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from kilnflow._atomic import atomic_directory

from ._file import PathDataset, is_local, write_file

__all__ = ["MatplotlibDataset"]


class MatplotlibDataset(PathDataset):
    """A figure as an image file, or a list or dict of figures as a folder of images.

    A figure is written with ``savefig`` (``save_args`` go to it) in the
    format of the file's extension, else ``save_args.format``, else PNG. A
    list is written as ``0.png``, ``1.png``, ... and a dict as one file per
    key (``<key>.png`` unless the key has an extension) inside the folder
    ``filepath``; a save replaces the whole folder. A load returns new
    figures showing the saved images: one figure, or a list or a dict keyed
    by file name without extension, shaped as it was saved.
    """

    _extra = "matplotlib"
    _requires = ("matplotlib",)

    @property
    def _format(self) -> str:
        """The image format: ``save_args.format``, else the file's extension, else PNG."""
        extension = posixpath.splitext(self._filepath)[1].lstrip(".")
        return str(self._save_args.get("format") or extension or "png")

    def _save(self, data: Any) -> None:
        fs, path = self._filesystem()
        target = self._save_path(fs, path)
        if not isinstance(data, (list, tuple, Mapping)):
            write_file(fs, target, self._writer(data))
            return
        items = data.items() if isinstance(data, Mapping) else enumerate(data)
        files = {self._file_name(str(key)): figure for key, figure in items}
        if is_local(fs):
            with atomic_directory(target) as folder:
                for name, figure in files.items():
                    with open(os.path.join(folder, name), "xb") as file:
                        self._writer(figure)(file)
        else:
            if fs.exists(target):
                fs.rm(target, recursive=True)
            for name, figure in files.items():
                write_file(fs, posixpath.join(target, name), self._writer(figure))
        fs.invalidate_cache(target)

    def _load(self) -> Any:
        fs, path = self._filesystem()
        target = self._load_path(fs, path)
        if not fs.isdir(target):
            with fs.open(target, "rb") as file:
                return self._read(file, self._format)
        names = sorted(posixpath.basename(found) for found in fs.ls(target, detail=False))
        figures = {}
        for name in names:
            with fs.open(posixpath.join(target, name), "rb") as file:
                figures[name] = self._read(file, posixpath.splitext(name)[1].lstrip("."))
        stems = {posixpath.splitext(name)[0]: figures[name] for name in names}
        if all(stem.isdigit() for stem in stems):
            return [stems[stem] for stem in sorted(stems, key=int)]
        return stems

    def _file_name(self, key: str) -> str:
        return key if posixpath.splitext(key)[1] else f"{key}.{self._format}"

    def _writer(self, figure: Any) -> Callable[[BinaryIO], None]:
        args = {**self._save_args, "format": self._format}
        return lambda file: figure.savefig(file, **args)

    def _read(self, file: BinaryIO, image_format: str) -> Any:
        from matplotlib.figure import Figure
        from matplotlib.image import imread

        image = imread(file, format=image_format or self._format)
        dpi = float(self._load_args.get("dpi", 100))
        height, width = image.shape[:2]
        figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
        axes.imshow(image)
        axes.set_axis_off()
        return figure


def __dir__() -> list[str]:
    return __all__
