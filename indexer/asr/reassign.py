"""Roles of finished mono calls re-decided from their stored voices, without transcribing.

Every diarized speaker's voice is kept in its transcript (``asr.speakers[].voice``), so when a
manager's voiceprint is enrolled (or enrolled again) the roles of that manager's past mono
calls are decided again by the same rule as at transcription (``roles.decide_roles``) and the
utterances take the new roles; words, times and speaker labels stay as they are.
"""

from __future__ import annotations

from indexer.asr.diarization import similarity
from indexer.asr.roles import UNASSIGNED_WARNING, decide_roles
from indexer.asr.schema import RoleDecision
from indexer.transcript import Call, Role, RolesEvidence


def reassign(call: Call, voiceprint: list[float] | None, threshold: float) -> Call | None:
    """The call with roles from ``voiceprint``; None when it is not a diarized mono call with
    stored voices, or when nothing changes."""
    if call.asr.roles in (None, RolesEvidence.CHANNELS) or not call.asr.speakers:
        return None
    main = [s.speaker for s in call.asr.speakers[:2]]
    voices = {s.speaker: s.voice for s in call.asr.speakers if s.voice is not None}
    if len(main) < 2 or any(speaker not in voices for speaker in main):
        return None
    if voiceprint is None and call.asr.roles is RolesEvidence.PHRASES:
        return None  # no voiceprint to say otherwise: the phrases' decision stands
    similarities = None
    if voiceprint is not None:
        similarities = {s: similarity(v, voiceprint) for s, v in voices.items()}
    decision: RoleDecision = decide_roles(main, similarities, threshold, None)
    role_of = decision.roles
    speakers = [
        s.model_copy(
            update={
                "role": role_of.get(s.speaker, Role.UNKNOWN),
                "similarity": (
                    round(similarities[s.speaker], 3)
                    if similarities is not None and s.speaker in similarities
                    else None
                ),
            }
        )
        for s in call.asr.speakers
    ]
    utterances = [
        u.model_copy(update={"role": role_of.get(u.speaker, Role.UNKNOWN)}) for u in call.utterances
    ]
    asr = call.asr.model_copy(
        update={
            "roles": decision.evidence,
            "roles_confidence": decision.confidence,
            "speakers": speakers,
        }
    )
    warnings = [w for w in call.warnings if not w.startswith(UNASSIGNED_WARNING)]
    if decision.reason:
        warnings.append(f"{UNASSIGNED_WARNING}{decision.reason}")
    updated = call.model_copy(update={"asr": asr, "utterances": utterances, "warnings": warnings})
    return None if updated == call else updated
