"""A shot's frames kept on disk, not in memory: what lets a run's memory stay flat with its length.

A 300-frame 1080p shot is 1.8 GB of RGB and 600 MB of line-art masks; at
4096x2160 a frame is 26 MB. The pipeline needs one frame at a time (the
current segment's, the previous finished one), so the line art is spooled
once into an anonymous temporary file (deleted by the OS when the process
ends, even on ``kill -9``) and read back frame by frame. Binary frames are
stored as packed bits (one bit a pixel).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator

import numpy as np

from ..errors import UserError


class FrameStore:
    """Frames of one shape and dtype in a temporary file; indexes like a (T, H, W[, C]) array, one frame at a time.

    Only integer indexing and iteration are offered, which is all a streaming
    consumer needs; ``shape``, ``dtype`` and ``len`` describe the whole stack.
    """

    def __init__(self, frame_shape: tuple[int, ...], dtype: np.dtype | type, directory: str | None = None):
        self.frame_shape = tuple(int(side) for side in frame_shape)
        self.dtype = np.dtype(dtype)
        self.packed = self.dtype == np.bool_
        pixels = int(np.prod(self.frame_shape))
        self.frame_bytes = (pixels + 7) // 8 if self.packed else pixels * self.dtype.itemsize
        self._file = tempfile.TemporaryFile(prefix="longanimation-frames-", dir=directory)
        self._count = 0

    @classmethod
    def spool(cls, frames: Iterable[np.ndarray], labels: Iterable[str] | None = None, source: str = "input") -> FrameStore:
        """Write ``frames`` (all of one shape) to a new store; ``labels`` name them in a size mismatch error."""
        labels = iter(labels) if labels is not None else None
        store = None
        first_label = None
        for position, frame in enumerate(frames):
            label = next(labels, f"frame {position}") if labels is not None else f"frame {position}"
            frame = np.asarray(frame)
            if store is None:
                store, first_label = cls(frame.shape, frame.dtype), label
            elif frame.shape != store.frame_shape:
                first = store.frame_shape
                raise UserError(
                    f"frames of {source} differ in size: {first_label} is {first[1]}x{first[0]}, "
                    f"{label} is {frame.shape[1]}x{frame.shape[0]}"
                )
            store.append(frame)
        if store is None:
            raise UserError(f"{source} holds no frames")
        return store

    def append(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=self.dtype)
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame of shape {frame.shape} in a store of {self.frame_shape}")
        data = np.packbits(frame.ravel()) if self.packed else frame.ravel()
        self._file.seek(self._count * self.frame_bytes)
        self._file.write(data.tobytes())
        self._count += 1

    def __len__(self) -> int:
        return self._count

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._count, *self.frame_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.frame_shape)

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"frame {index} of a store of {self._count}")
        self._file.seek(index * self.frame_bytes)
        raw = np.frombuffer(self._file.read(self.frame_bytes), np.uint8)
        if self.packed:
            pixels = int(np.prod(self.frame_shape))
            return np.unpackbits(raw, count=pixels).astype(bool).reshape(self.frame_shape)
        return raw.view(self.dtype).reshape(self.frame_shape).copy()

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self._count):
            yield self[index]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
