"""Call metrics, computed from the transcript at index time and stored on the call document.

They are call-level numbers, so Kibana can aggregate them and the API can filter and sort by
them (nested utterances cannot be aggregated in Kibana). Definitions, all from utterance spans
(``start``..``end``) and word counts, with utterances taken in time order (by start, then end);
``None`` where a metric has nothing to measure. ``<role>`` is ``manager`` or ``client``;
utterances of an unknown role count only towards silence and break runs.

* ``talk_s_<role>``: seconds during which that role speaks (the union of its utterance spans, so
  overlapping utterances of one role count once).
* ``talk_ratio_manager``: manager talk / (manager talk + client talk); ``None`` when neither talks.
* ``silence_s``: seconds of the call in which nobody speaks (the duration minus the union of all
  utterance spans).
* ``longest_monologue_s_<role>``: the longest *run* — utterances of that role one after another
  in time order, with no utterance of anyone else starting between them — from its first start
  to its last end (pauses inside a run count: the other side stayed silent). A backchannel
  ("ага") of the other side that starts during the run ends it.
* ``interruptions_<role>``: how many of that role's utterances start while the other role is
  speaking (strictly inside another-role utterance; starting at the same instant, or exactly as
  the other ends, is not an interruption).
* ``wpm_<role>``: that role's words per minute of its talk time; ``None`` when it never talks.
* ``response_latency_s``: the mean time the manager takes to answer the client. An answer is a
  manager utterance that comes right after a client utterance in time order when the client held
  the floor — the manager was not still speaking when the client stopped (a client backchannel
  inside manager speech is no question to answer). Its latency runs from the end of the client's
  speech so far to the manager's start, and is 0 when the manager starts before the client
  stops. ``None`` when there are no answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby
from operator import attrgetter

from pydantic import BaseModel, ConfigDict

from indexer.transcript import Call, Role, Utterance

ROLES = (Role.MANAGER, Role.CLIENT)
_OTHER_ROLE = {Role.MANAGER: Role.CLIENT, Role.CLIENT: Role.MANAGER}
# An utterance's span, and its start: C callables, as the metrics read every utterance.
_span = attrgetter("start", "end")
_start = attrgetter("start")


class CallMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    talk_s_manager: float
    talk_s_client: float
    talk_ratio_manager: float | None
    silence_s: float
    longest_monologue_s_manager: float
    longest_monologue_s_client: float
    interruptions_manager: int
    interruptions_client: int
    wpm_manager: float | None
    wpm_client: float | None
    response_latency_s: float | None


METRIC_NAMES: tuple[str, ...] = tuple(CallMetrics.model_fields)


def _union_length(spans: Iterable[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def _longest_monologue(ordered: Sequence[Utterance], role: Role) -> float:
    longest = 0.0
    run_start: float | None = None
    run_end = 0.0
    for utterance in ordered:
        if utterance.role is role:
            if run_start is None:
                run_start = utterance.start
            run_end = max(run_end, utterance.end)
            longest = max(longest, run_end - run_start)
        else:
            run_start, run_end = None, 0.0
    return longest


def _interruptions(ordered: Sequence[Utterance]) -> dict[Role, int]:
    """Starts inside another role's utterance, in one sweep over utterances ordered by start."""
    counts = dict.fromkeys(ROLES, 0)
    # The furthest end of each role's utterances that started strictly earlier.
    reach = dict.fromkeys(ROLES, float("-inf"))
    for _, group in groupby(ordered, key=_start):
        same_start = list(group)
        for u in same_start:
            other = _OTHER_ROLE.get(u.role)
            if other is not None and reach[other] > u.start:
                counts[u.role] += 1
        for u in same_start:
            if u.role in reach:
                reach[u.role] = max(reach[u.role], u.end)
    return counts


def _response_latency(ordered: Sequence[Utterance]) -> float | None:
    delays: list[float] = []
    # The furthest end of each role's utterances before the current one.
    reach = dict.fromkeys(ROLES, float("-inf"))
    previous: Utterance | None = None
    for utterance in ordered:
        if (
            previous is not None
            and previous.role is Role.CLIENT
            and utterance.role is Role.MANAGER
            and reach[Role.MANAGER] < reach[Role.CLIENT]
        ):
            delays.append(max(0.0, utterance.start - reach[Role.CLIENT]))
        if utterance.role in reach:
            reach[utterance.role] = max(reach[utterance.role], utterance.end)
        previous = utterance
    return sum(delays) / len(delays) if delays else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def call_metrics(call: Call) -> CallMetrics:
    ordered = sorted(call.utterances, key=_span)
    spans: dict[Role, list[tuple[float, float]]] = {role: [] for role in Role}
    words = dict.fromkeys(Role, 0)
    for u in ordered:  # each role's spans and words in one pass
        spans[u.role].append((u.start, u.end))
        words[u.role] += len(u.words)
    talk = {role: _union_length(spans[role]) for role in ROLES}
    spoken = _union_length(map(_span, ordered))
    both = talk[Role.MANAGER] + talk[Role.CLIENT]
    interruptions = _interruptions(ordered)

    def wpm(role: Role) -> float | None:
        return words[role] / (talk[role] / 60) if talk[role] > 0 else None

    return CallMetrics(
        talk_s_manager=round(talk[Role.MANAGER], 3),
        talk_s_client=round(talk[Role.CLIENT], 3),
        talk_ratio_manager=_rounded(talk[Role.MANAGER] / both if both > 0 else None),
        silence_s=round(max(0.0, call.duration_s - spoken), 3),
        longest_monologue_s_manager=round(_longest_monologue(ordered, Role.MANAGER), 3),
        longest_monologue_s_client=round(_longest_monologue(ordered, Role.CLIENT), 3),
        interruptions_manager=interruptions[Role.MANAGER],
        interruptions_client=interruptions[Role.CLIENT],
        wpm_manager=_rounded(wpm(Role.MANAGER)),
        wpm_client=_rounded(wpm(Role.CLIENT)),
        response_latency_s=_rounded(_response_latency(ordered)),
    )
