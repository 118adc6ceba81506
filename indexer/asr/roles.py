"""Who said it: channel layouts for stereo calls, and diarized speakers → roles for mono calls.

Stereo recordings from a PBX carry one party per channel, so the role is a property of the
channel: by default left is the manager and right is the client; a call's metadata can say
otherwise (``"channels": ["client", "manager"]``).

Mono recordings need diarization, which yields anonymous speakers (``SPEAKER_01``…). A wrong
confident role is worse than none (it silently corrupts role search and every metric), so they
become roles only on evidence (``decide_roles``):

1. **Voiceprint**: the call's manager has an enrolled voiceprint, and exactly one of the two
   main speakers (the two who talk longest) is at least ``asr_voice_threshold`` similar to it
   (and clearly more so than the other, by ``VOICE_MARGIN``). That speaker is the manager, the
   other main speaker the client. When a voiceprint exists and no speaker matches, nothing
   else decides: the voiceprint says the manager is not (recognisably) in the call.
2. **Phrases**, only with ``asr_roles_from_phrases`` (off by default, see docs/asr.md) and no
   voiceprint for the manager: exactly one main speaker says a manager cue in their opening
   words (``greeting`` below, without its first-speaker fallback).
3. Otherwise **unassigned**: every role ``unknown``, speakers keep their labels.

A manager cue (``Settings.asr_manager_cues``: "меня зовут", "компания", "my name is",
"calling from"…) counts when it is among a speaker's first ``OPENING_WORDS`` words, matched as
whole words (case, punctuation and ё/е ignored). ``asr_speaker_rule`` / a call's
``speaker_rule`` are still read: ``first-is-manager`` / ``first-is-client`` (and the old
greeting fallback "by direction, the first speaker is ...") are guesses and never decide roles
on their own, so only ``greeting`` lets phrases decide, and only with
``asr_roles_from_phrases``.

Only the two speakers who talk longest get roles; any others (a transfer, a colleague, a
misfired cluster) are ``unknown``, as are all speakers when there is no diarization at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from indexer.asr.schema import RoleDecision, SpokenText
from indexer.transcript import Role, RolesEvidence

DEFAULT_LAYOUT: tuple[Role, ...] = (Role.MANAGER, Role.CLIENT)
OPENING_WORDS = 30  # how far into a speaker's talk a greeting cue still counts


class SpeakerRule(StrEnum):
    GREETING = "greeting"
    FIRST_IS_MANAGER = "first-is-manager"
    FIRST_IS_CLIENT = "first-is-client"


def channel_roles(channels: int, layout: Sequence[Role] | None) -> tuple[Role, ...]:
    """The role of each channel; mono calls get ``unknown`` until diarization says more."""
    if channels == 1:
        return (Role.UNKNOWN,)
    roles = tuple(layout) if layout is not None else DEFAULT_LAYOUT
    if len(roles) != channels:
        raise ValueError(f"channel layout names {len(roles)} roles for {channels} channels")
    return roles


# The manager speaker must beat the other main speaker's similarity by this much: two voices
# both close to the voiceprint cannot be told apart by it.
VOICE_MARGIN = 0.1
UNASSIGNED_WARNING = "roles unassigned: "  # how a transcript's warning says why


def decide_roles(
    main: Sequence[str],
    similarities: dict[str, float] | None,
    threshold: float,
    greeters: Sequence[str] | None,
) -> RoleDecision:
    """Roles of the two main speakers (longest talk first) from the evidence there is; with
    fewer than two speakers nothing is decided (there is no "other party").

    ``similarities``: each main speaker's similarity to the manager's voiceprint, None when the
    manager has none. ``greeters``: the main speakers who said a manager cue, None when phrases
    may not decide.
    """
    speakers = list(main[:2])
    unknown = dict.fromkeys(speakers, Role.UNKNOWN)
    if len(speakers) < 2:
        return RoleDecision(unknown, RolesEvidence.UNASSIGNED, None, "fewer than two speakers")
    if similarities is not None:
        ranked = sorted(speakers, key=lambda s: -similarities.get(s, -1.0))
        best = ranked[0]
        score = similarities.get(best, -1.0)
        runner_up = similarities.get(ranked[1], -1.0)
        if score < threshold:
            return RoleDecision(
                unknown, RolesEvidence.UNASSIGNED, None,
                f"no speaker's voice matches the manager's voiceprint (best similarity "
                f"{score:.2f}, threshold {threshold:.2f})",
            )  # fmt: skip
        if score - runner_up < VOICE_MARGIN:
            return RoleDecision(
                unknown, RolesEvidence.UNASSIGNED, None,
                f"two speakers are as close to the manager's voiceprint ({score:.2f}, "
                f"{runner_up:.2f}): roles not assigned",
            )  # fmt: skip
        roles = {s: Role.MANAGER if s == best else Role.CLIENT for s in speakers}
        return RoleDecision(roles, RolesEvidence.VOICEPRINT, round(min(1.0, score), 3))
    if greeters is not None and len(greeters) == 1 and greeters[0] in speakers:
        roles = {s: Role.MANAGER if s == greeters[0] else Role.CLIENT for s in speakers}
        return RoleDecision(roles, RolesEvidence.PHRASES, None)
    reason = (
        "no voiceprint for the call's manager and phrases may not decide roles "
        "(asr_roles_from_phrases)"
        if greeters is None
        else "no voiceprint for the call's manager and no single speaker said a manager cue"
    )
    return RoleDecision(unknown, RolesEvidence.UNASSIGNED, None, reason)


def greeters_of(
    spoken: Sequence[SpokenText], main: Sequence[str], cues: Sequence[str]
) -> list[str]:
    """The main speakers whose opening words contain a manager cue."""
    ordered = sorted((s for s in spoken if s.speaker in main), key=lambda s: s.start)
    return [s for s in main if _greets(s, ordered, cues)]


def parse_layout(value: str | Sequence[str]) -> tuple[Role, ...]:
    """``"manager,client"`` or ``["client", "manager"]`` → roles, one per channel."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(Role(part.strip().lower()) for part in parts)


def _greets(speaker: str, ordered: Sequence[SpokenText], cues: Sequence[str]) -> bool:
    words: list[str] = []
    for item in ordered:
        if item.speaker == speaker:
            words.extend(_normalise(item.text).split())
        if len(words) >= OPENING_WORDS:
            break
    opening = " " + " ".join(words[:OPENING_WORDS]) + " "
    return any(f" {_normalise(cue)} " in opening for cue in cues if cue.strip())


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold().replace("ё", "е")).split())
