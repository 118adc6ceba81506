"""Decoding recordings into 16 kHz float32 samples, one array per channel, with ffmpeg.

ffmpeg reads every container and codec a telephony system produces (wav, mp3, ogg/opus, flac,
m4a…) and resamples in one pass, so nothing here depends on a Python codec binding. Anything
that makes a recording unusable becomes an ``AudioError`` naming the file and the reason.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.errors import AudioError

SAMPLE_RATE = 16_000  # what Whisper, the VAD and wav2vec2 all expect
MIN_SOURCE_RATE = 8_000  # narrowband telephony; below that speech is not intelligible to ASR
SUPPORTED_CHANNELS = (1, 2)
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac"})

Samples = NDArray[np.float32]


@dataclass(frozen=True)
class AudioProbe:
    """What the container says about a recording, before decoding it."""

    path: Path
    channels: int
    sample_rate: int
    duration_s: float | None  # None when the container does not say
    created_at: datetime | None  # the container's creation_time tag, when present


@dataclass(frozen=True)
class DecodedAudio:
    probe: AudioProbe
    channels: tuple[Samples, ...]  # 16 kHz, one per source channel, equal lengths
    warnings: tuple[str, ...] = ()  # what ffmpeg complained about while still decoding

    @property
    def duration_s(self) -> float:
        return len(self.channels[0]) / SAMPLE_RATE if self.channels else 0.0

    def mixdown(self) -> Samples:
        return np.asarray(np.mean(np.stack(self.channels), axis=0), dtype=np.float32)


def probe(path: Path) -> AudioProbe:
    """Read the first audio stream's layout; raise AudioError if there is none to read."""
    source = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(source, f"cannot read: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError(source, "file is empty (0 bytes)")
    result = _run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            source,
        ],
        source,
    )
    if result.returncode != 0:
        raise AudioError(source, f"not a readable audio file: {_last_line(result.stderr)}")
    info: dict[str, Any] = json.loads(result.stdout or b"{}")
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioError(source, "contains no audio stream")
    stream, container = streams[0], info.get("format", {})
    channels = int(stream.get("channels") or 0)
    sample_rate = int(stream.get("sample_rate") or 0)
    if channels not in SUPPORTED_CHANNELS:
        raise AudioError(source, f"{channels} channels: only mono and stereo calls are supported")
    if sample_rate < MIN_SOURCE_RATE:
        raise AudioError(
            source, f"sample rate {sample_rate} Hz is below {MIN_SOURCE_RATE} Hz telephony"
        )
    return AudioProbe(
        path=path,
        channels=channels,
        sample_rate=sample_rate,
        duration_s=_float(stream.get("duration")) or _float(container.get("duration")),
        created_at=_creation_time(container.get("tags", {})),
    )


def decode(audio: AudioProbe, max_duration_s: float) -> DecodedAudio:
    """All channels as 16 kHz float32; refuse recordings longer than ``max_duration_s``."""
    source = str(audio.path)
    if audio.duration_s is not None and audio.duration_s > max_duration_s:
        raise AudioError(source, _too_long(audio.duration_s, max_duration_s))
    # -t bounds memory even when the container lies about (or omits) its duration.
    result = _run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", source, "-map", "0:a:0", "-t",
         f"{max_duration_s + 1:.3f}", "-f", "f32le", "-acodec", "pcm_f32le",
         "-ac", str(audio.channels), "-ar", str(SAMPLE_RATE), "-"],
        source,
    )  # fmt: skip
    if result.returncode != 0:
        raise AudioError(source, f"cannot decode: {_last_line(result.stderr)}")
    interleaved = np.frombuffer(result.stdout, dtype="<f4")
    usable = len(interleaved) - len(interleaved) % audio.channels
    frames = interleaved[:usable].reshape(-1, audio.channels)
    if len(frames) == 0:
        raise AudioError(source, "decodes to no audio samples")
    if len(frames) / SAMPLE_RATE > max_duration_s:
        raise AudioError(source, _too_long(len(frames) / SAMPLE_RATE, max_duration_s))
    if not np.isfinite(frames).all():
        raise AudioError(source, "decodes to non-finite sample values")
    channels = tuple(
        np.array(frames[:, c], dtype=np.float32, copy=True) for c in range(audio.channels)
    )
    # ffmpeg exits 0 on a damaged frame it could skip; the transcript should still say so.
    complaints = result.stderr.decode("utf-8", "replace").strip()
    warnings = (f"decoder: {_last_line(result.stderr)}",) if complaints else ()
    return DecodedAudio(probe=audio, channels=channels, warnings=warnings)


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def _run(command: list[str], source: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise AudioError(source, f"{command[0]} is not installed") from exc


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "unknown error"


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number >= 0 else None


def _creation_time(tags: dict[str, Any]) -> datetime | None:
    raw = tags.get("creation_time")
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def _too_long(duration_s: float, limit_s: float) -> str:
    return f"{duration_s:.0f} s long, over the {limit_s:.0f} s limit (asr_max_audio_s)"
