"""How many log-Mel frames of a batch of windows the encoder is given (``fitted_frames``)."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.asr.engine import FIT_MARGIN_FRAMES, WINDOW_FRAMES, fitted_frames

MELS = 80


def _windows(*spoken: int) -> np.ndarray:
    """A batch of padded windows, each speaking in its first ``spoken`` frames (then exact
    zeros, as faster-whisper pads a window shorter than 30 s)."""
    batch = np.zeros((len(spoken), MELS, WINDOW_FRAMES), dtype=np.float32)
    rng = np.random.default_rng(7)
    for row, frames in enumerate(spoken):
        batch[row, :, :frames] = rng.uniform(-1.5, 1.5, (MELS, frames))
    return batch


def test_no_floor_encodes_the_whole_window() -> None:
    assert fitted_frames(_windows(400), 0) == WINDOW_FRAMES


@pytest.mark.parametrize(
    ("spoken", "floor", "expected"),
    [
        (400, 1000, 1000),  # short speech: the floor
        (1500, 1000, 1500 + FIT_MARGIN_FRAMES),  # longer: its speech and the margin
        (1001, 1000, 1001 + FIT_MARGIN_FRAMES + 1),  # an even count: whole encoder positions
        (2900, 1000, WINDOW_FRAMES),  # never more than the window
        (0, 1000, 1000),  # a silent window
    ],
)
def test_a_window_is_cut_after_its_speech_and_the_margin(
    spoken: int, floor: int, expected: int
) -> None:
    assert fitted_frames(_windows(spoken), floor) == expected


def test_a_batch_is_cut_for_its_longest_window() -> None:
    assert fitted_frames(_windows(300, 1700, 900), 1000) == 1700 + FIT_MARGIN_FRAMES


def test_a_zero_frame_inside_the_speech_does_not_end_it() -> None:
    batch = _windows(1600)
    batch[0, :, 500:700] = 0.0  # digital silence between two stretches of speech
    assert fitted_frames(batch, 1000) == 1600 + FIT_MARGIN_FRAMES


def test_one_window_without_a_batch_axis() -> None:
    assert fitted_frames(_windows(1200)[0], 1000) == 1200 + FIT_MARGIN_FRAMES
