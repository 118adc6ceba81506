"""Bleeping a recording: a copy with the redacted words' seconds silenced on every channel.

Every channel, not only the speaker's: telephony echo carries the client's digits into the
manager's channel too. The copy keeps the original's container, sample format, rate and channel
count; outside the silenced spans its samples are the original's, sample for sample, for PCM,
FLAC and G.711 (A-law, µ-law) files. Lossy formats (MP3, Ogg Vorbis, Opus) are decoded and
encoded again, so they are only close outside the spans. Formats libsndfile cannot read are an
AudioError naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from indexer.errors import AudioError

# libsndfile subtypes whose samples survive a read and a write unchanged as 16-bit integers,
# as 32-bit integers, or as floats.
_INT16_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "ULAW", "ALAW"})
_INT32_SUBTYPES = frozenset({"PCM_24", "PCM_32"})


def local_path(uri: str) -> Path:
    """The file a recording URI names: a ``file://`` URI or a plain path."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise AudioError(uri, "the recording is on another host")
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # "C:" is a drive, not a scheme
        raise AudioError(uri, f"only local recordings can be bleeped, not '{parts.scheme}:' URIs")
    return Path(uri)


def sample_ranges(
    spans: Sequence[tuple[float, float]], sample_rate: int, frames: int, padding_s: float
) -> list[tuple[int, int]]:
    """Each span in samples, widened by ``padding_s`` on both sides (word times from a
    recogniser are off by a tenth of a second or two), clipped to the file, merged."""
    ranges = sorted(
        (
            # Rounded first: 2.3 s * 8000 is 18400.000000000004, not a sample more.
            max(0, math.floor(round((start - padding_s) * sample_rate, 6))),
            min(frames, math.ceil(round((end + padding_s) * sample_rate, 6))),
        )
        for start, end in spans
    )
    merged: list[tuple[int, int]] = []
    for begin, end in ranges:
        if begin >= end:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def bleep_file(
    source: Path, target: Path, spans: Sequence[tuple[float, float]], *, padding_s: float
) -> list[tuple[int, int]]:
    """Write ``target``: ``source`` with ``spans`` (seconds) silenced on every channel.
    Returns the silenced sample ranges. ``source`` may be ``target`` (bleeping again)."""
    import numpy as np
    import soundfile as sf

    try:
        info = sf.info(str(source))
        dtype = (
            "int16"
            if info.subtype in _INT16_SUBTYPES
            else "int32"
            if info.subtype in _INT32_SUBTYPES
            else "float64"
        )
        data, sample_rate = sf.read(str(source), dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(str(source), f"cannot read the recording to bleep it: {exc}") from exc
    ranges = sample_ranges(spans, sample_rate, len(data), padding_s)
    for begin, end in ranges:
        data[begin:end, :] = np.zeros((), dtype=data.dtype)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: the API never serves half a file.
    partial = target.with_name(f".{target.name}.partial")
    try:
        sf.write(
            str(partial),
            data,
            sample_rate,
            subtype=info.subtype,
            endian=info.endian,
            format=info.format,
        )
        partial.replace(target)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise AudioError(str(target), f"cannot write the bleeped recording: {exc}") from exc
    return ranges
