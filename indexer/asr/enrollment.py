"""Enrolling a manager's voiceprint from recordings of that manager.

A recording given to ``voices enroll`` is one of:

* a **stereo call** of the manager: the manager's channel comes from the call's metadata
  (sidecar or manifest ``channels``; by default left), so only the manager's speech is used;
* a **mono recording of the manager alone** (a voice memo, a greeting): all of its speech is
  used. If diarization hears more than one voice in it, only the one who talks longest is
  used, and the report says so.

Each recording's voice (``VoiceEmbedder``) is weighted by its seconds of speech; the mean,
scaled to unit length, is the voiceprint. A recording that cannot be used (unreadable, no
speech, under a second of the manager's voice) is reported and skipped; no usable recording at
all stores nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.asr.audio import decode, probe
from indexer.asr.diarization import SenkoDiarizer, VoiceEmbedder
from indexer.asr.metadata import MetadataSource
from indexer.asr.roles import channel_roles
from indexer.asr.speakers import talk_by_speaker
from indexer.asr.voices import Voiceprint, VoiceprintError, VoiceStore
from indexer.errors import EarshotError
from indexer.settings import Settings
from indexer.transcript import Role


@dataclass
class Enrollment:
    voiceprint: Voiceprint | None = None
    used: list[str] = field(default_factory=list)  # "<file> (<channel>): <seconds> s"
    failures: list[str] = field(default_factory=list)  # "<file>: <reason>"
    notes: list[str] = field(default_factory=list)


def enroll(
    manager_id: str,
    files: Sequence[Path],
    settings: Settings,
    store: VoiceStore,
    diarizer: SenkoDiarizer,
    embedder: VoiceEmbedder,
    metadata: MetadataSource | None = None,
) -> Enrollment:
    """Make and store ``manager_id``'s voiceprint from ``files`` (see the module docstring)."""
    store.path(manager_id)  # refuse a bad id before any model is loaded
    metadata = metadata or MetadataSource()
    result = Enrollment()
    voices: list[tuple[np.ndarray, float]] = []
    for path in files:
        try:
            audio = decode(probe(path), settings.asr_max_audio_s)
            if len(audio.channels) == 2:
                layout = channel_roles(2, metadata.lookup(audio.probe).channels)
                if Role.MANAGER not in layout:
                    raise VoiceprintError(f"{path}: its channel layout names no manager channel")
                channel = layout.index(Role.MANAGER)
                samples, where = audio.channels[channel], ("left", "right")[channel]
            else:
                samples, where = audio.channels[0], "mono"
            found = diarizer(samples)
            talk = talk_by_speaker(found.turns)
            if not talk:
                raise VoiceprintError(f"{path}: no speech in the {where} channel")
            main = next(iter(talk))
            if len(talk) > 1:
                result.notes.append(
                    f"{path}: {len(talk)} voices heard in the {where} channel; only the one who "
                    f"talks longest ({talk[main]:.1f} s of {sum(talk.values()):.1f} s) is used"
                )
            intervals = [(t.start, t.end) for t in found.turns if t.speaker == main]
            voice = embedder.embed(samples, intervals)
            if voice is None:
                raise VoiceprintError(f"{path}: too little speech ({talk[main]:.1f} s)")
            voices.append((np.asarray(voice), talk[main]))
            result.used.append(f"{path} ({where}): {talk[main]:.1f} s")
        except EarshotError as exc:
            result.failures.append(str(exc))
    if not voices:
        return result
    total = sum(seconds for _, seconds in voices)
    mean = np.sum([voice * seconds for voice, seconds in voices], axis=0) / total
    unit = mean / float(np.linalg.norm(mean))
    result.voiceprint = store.put(
        manager_id, [round(float(x), 6) for x in unit], total, [str(p) for p in files]
    )
    return result
