"""Contact sheet: a few annotated frames spread evenly over a video, in a labelled grid PNG.

Frames are offered one by one as they stream past and only small thumbnails are kept, so memory
does not grow with the video. With a known frame count the picks are the centres of equal segments;
without one, a thumbnail every `stride` frames is kept and the stride doubles whenever the buffer fills.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from framequeue.media.annotate import draw_label
from framequeue.media.frames import Frame

#: a 2x2 grid
GRID_ROWS: Final = 2
GRID_COLS: Final = 2
#: width of one cell in the sheet, pixels
CELL_WIDTH_PX: Final = 480
_LABEL_COLOUR: Final = (40, 40, 40)


def sheet_indexes(frames_total: int, cells: int = GRID_ROWS * GRID_COLS) -> list[int]:
    """Indexes of `cells` frames at the centres of equal segments of the video."""
    return sorted({min(frames_total - 1, int((k + 0.5) * frames_total / cells)) for k in range(cells)})


class ContactSheet:
    def __init__(self, frames_total: int | None, cells: int = GRID_ROWS * GRID_COLS) -> None:
        self.cells = cells
        self._targets = set(sheet_indexes(frames_total, cells)) if frames_total else None
        self._stride = 1
        #: frame index -> labelled thumbnail
        self._kept: dict[int, npt.NDArray[np.uint8]] = {}

    def wants(self, index: int) -> bool:
        if self._targets is not None:
            return index in self._targets
        return index % self._stride == 0

    def offer(self, frame: Frame, image: npt.NDArray[np.uint8]) -> None:
        """Keep a labelled thumbnail of `image` (frame's annotated picture) if this frame is wanted."""
        if not self.wants(frame.index):
            return
        self._kept[frame.index] = self._thumbnail(frame, image)
        if self._targets is None and len(self._kept) >= 2 * self.cells:
            self._stride *= 2
            self._kept = {i: t for i, t in self._kept.items() if i % self._stride == 0}

    def _thumbnail(self, frame: Frame, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        height = max(1, round(image.shape[0] * CELL_WIDTH_PX / image.shape[1]))
        thumb = np.asarray(cv2.resize(image, (CELL_WIDTH_PX, height), interpolation=cv2.INTER_AREA), np.uint8)
        draw_label(thumb, f"frame {frame.index}  {frame.time_s:.2f} s", (0, 0), _LABEL_COLOUR, 0.5)
        return thumb

    def picks(self) -> list[int]:
        """Frame indexes that will appear, in order."""
        kept = sorted(self._kept)
        if len(kept) <= self.cells:
            return kept
        return [kept[int((k + 0.5) * len(kept) / self.cells)] for k in range(self.cells)]

    def save(self, path: Path) -> None:
        """Write the grid as PNG; cells without a frame stay black."""
        picks = self.picks()
        if not picks:
            raise ValueError("no frame was offered to the contact sheet")
        cell_h, cell_w = self._kept[picks[0]].shape[:2]
        sheet = np.zeros((cell_h * GRID_ROWS, cell_w * GRID_COLS, 3), np.uint8)
        for k, index in enumerate(picks[: GRID_ROWS * GRID_COLS]):
            row, col = divmod(k, GRID_COLS)
            thumb = self._kept[index][:cell_h, :cell_w]
            top, left = row * cell_h, col * cell_w
            sheet[top : top + thumb.shape[0], left : left + thumb.shape[1]] = thumb
        ok, png = cv2.imencode(".png", sheet)
        if not ok:
            raise RuntimeError("PNG encoding of the contact sheet failed")
        path.write_bytes(png.tobytes())
