"""``transcribe`` and ``ingest``: recordings → transcripts (→ Elasticsearch).

    transcribe AUDIO... --out DIR   write DIR/<call_id>.json per recording
    ingest AUDIO... [--out DIR]     the same, then load every good transcript
    voices enroll --manager ID AUDIO...   store a manager's voiceprint (docs/asr.md)
    voices list | voices delete ID | voices reassign [--manager ID]
    ... --ray [ADDRESS]             recognition on a Ray cluster (indexer/asr/distributed.py)

AUDIO may be files or directories (searched for wav, mp3, ogg/opus, flac, m4a). The company
vocabulary's terms (read from Elasticsearch) are offered to the model unless --no-vocabulary;
a recording is redone when the terms for its language change. Exit status: 0 when every
recording succeeded, 1 when any failed (each named on stderr), 2 for an unusable model or an
unreachable Elasticsearch (ingest; transcribe warns and goes on without the vocabulary).
whisperx and torch are imported only when a command runs, so the other ``python -m indexer``
commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from indexer.settings import Settings, get_settings
from indexer.trackers.tagging import current_tagger

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2


def register(commands: Any) -> None:
    transcribe = commands.add_parser("transcribe", help="transcribe call recordings")
    _common(transcribe)
    transcribe.add_argument("--out", type=Path, required=True, help="folder for transcripts")
    transcribe.set_defaults(run=_transcribe)

    ingest = commands.add_parser("ingest", help="transcribe recordings and load them")
    _common(ingest)
    ingest.add_argument(
        "--out", type=Path, default=None, help="folder for transcripts (default: transcripts_dir)"
    )
    ingest.set_defaults(run=_ingest)

    voices = commands.add_parser("voices", help="managers' voiceprints, for mono calls' roles")
    actions = voices.add_subparsers(dest="action", required=True)
    enroll = actions.add_parser(
        "enroll",
        help="make a manager's voiceprint from their stereo calls (the manager channel) or "
        "recordings of them alone; replaces an earlier one",
    )
    enroll.add_argument("--manager", required=True, help="the manager's id, as in call metadata")
    enroll.add_argument("audio", nargs="+", type=Path, help="recordings of the manager")
    enroll.add_argument("--manifest", type=Path, help="CSV of call metadata (channel layouts)")
    enroll.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto")
    enroll.set_defaults(run=_voices_enroll)
    listing = actions.add_parser("list", help="the enrolled managers")
    listing.set_defaults(run=_voices_list)
    delete = actions.add_parser("delete", help="forget a manager's voiceprint")
    delete.add_argument("manager", help="the manager's id")
    delete.set_defaults(run=_voices_delete)
    again = actions.add_parser(
        "reassign",
        help="decide the roles of stored mono calls again from the voiceprints (no "
        "transcription), and load the calls that changed",
    )
    again.add_argument("--manager", help="only this manager's calls")
    again.set_defaults(run=_voices_reassign)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", nargs="+", type=Path, help="recordings or folders of them")
    parser.add_argument("--manifest", type=Path, help="CSV of call metadata (see docs/asr.md)")
    parser.add_argument("--model", type=Path, help="local faster-whisper model directory")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto")
    parser.add_argument("--batch-size", type=int, help="VAD chunks decoded together")
    parser.add_argument(
        "--align-model-dir", type=Path, help="wav2vec2 models, one folder per language"
    )
    parser.add_argument("--diarization-model-dir", type=Path, help="local pyannote pipeline")
    parser.add_argument("--force", action="store_true", help="redo recordings already done")
    parser.add_argument(
        "--no-vocabulary",
        action="store_true",
        help="do not offer the company vocabulary's terms to the model (read from "
        "Elasticsearch otherwise)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cluster = parser.add_argument_group("Ray cluster (the 'ray' extra; docs/asr.md)")
    cluster.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="transcribe on a Ray cluster: ADDRESS of its head (host:port), or none for the "
        "cluster RAY_ADDRESS names, else a new one on this machine",
    )
    cluster.add_argument(
        "--ray-workers", type=int, help="recognition workers (default: one per CPU or GPU)"
    )
    cluster.add_argument(
        "--ray-gpu-share", type=float, help="share of a GPU per worker on GPU nodes (default 1)"
    )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "asr_model_dir": args.model,
        "asr_device": args.device,
        "asr_batch_size": args.batch_size,
        "align_model_dir": args.align_model_dir,
        "diarization_model_dir": args.diarization_model_dir,
    }
    base = get_settings()
    # Validate through the model, so a bad --batch-size is refused like a bad env variable.
    return Settings.model_validate(
        {**base.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    )


def _run_batch(
    args: argparse.Namespace, settings: Settings, out: Path, hotwords: dict[str, str]
) -> Any:
    """Recognition for every command that runs it: ``hotwords`` (the company vocabulary's
    terms by language, docs/asr.md) go to the model here, in one process or on every Ray
    worker, and into each recording's ledger key."""
    from indexer.asr.metadata import MetadataSource
    from indexer.asr.pipeline import Transcriber, run_batch

    def batch(runner: Any = None) -> Any:
        return run_batch(
            args.audio,
            out,
            settings,
            lambda: Transcriber.from_settings(settings, hotwords),
            MetadataSource(args.manifest),
            force=args.force,
            progress=not args.quiet,
            runner=runner,
            hotwords=hotwords,
        )

    if args.ray is None:
        return batch()
    from indexer.asr.distributed import RayRunner  # ray is imported only for --ray

    with RayRunner(
        settings,
        args.ray,
        workers=args.ray_workers,
        gpu_share=args.ray_gpu_share,
        hotwords=hotwords,
    ) as runner:
        return batch(runner)


def _vocabulary_hotwords(es: Elasticsearch, settings: Settings) -> dict[str, str]:
    """The company vocabulary's terms by language, as offered to the model (it helps their
    recall: docs/asr.md)."""
    from indexer.vocabulary import load_vocabulary

    return load_vocabulary(es, settings).hotwords_by_language()


def _transcribe(args: argparse.Namespace) -> int:
    from indexer.elastic import connect
    from indexer.errors import EarshotError, SearchBackendError

    settings = _settings(args)
    hotwords: dict[str, str] = {}
    if not args.no_vocabulary:
        # Transcripts only, no Elasticsearch needed: without one, say so and go on.
        try:
            hotwords = _vocabulary_hotwords(connect(settings), settings)
        except SearchBackendError as exc:
            print(
                f"warning: no company vocabulary ({exc}): transcribing without its terms; "
                "--no-vocabulary skips this",
                file=sys.stderr,
            )
    try:
        summary = _run_batch(args, settings, args.out, hotwords)
    except EarshotError as exc:  # the model or the manifest: nothing can be transcribed
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    for failure in summary.failures:
        print(f"error: {failure}", file=sys.stderr)
    print(summary.line(), file=sys.stderr)
    return EXIT_FAILED if summary.failures else EXIT_OK


def _ingest(args: argparse.Namespace) -> int:
    from indexer.elastic import backend_errors, connect
    from indexer.errors import EarshotError
    from indexer.index.definitions import ensure_calls_index
    from indexer.index.loader import load_calls

    settings = _settings(args)
    es = connect(settings)
    try:
        # Fail before hours of transcription if the results could not be stored.
        with backend_errors(settings.es_url):
            ensure_calls_index(es, settings.calls_alias)
        hotwords = {} if args.no_vocabulary else _vocabulary_hotwords(es, settings)
        summary = _run_batch(args, settings, args.out or settings.transcripts_dir, hotwords)
        for failure in summary.failures:
            print(f"error: {failure}", file=sys.stderr)
        print(summary.line(), file=sys.stderr)
        loaded = load_calls(es, settings, summary.calls, tag=current_tagger(es, settings))
    except EarshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    for failure in loaded.failures:
        print(f"error: {failure}", file=sys.stderr)
    print(loaded.line(), file=sys.stderr)
    return EXIT_FAILED if summary.failures or loaded.failures else EXIT_OK


def _voice_store(settings: Settings) -> Any:
    from indexer.asr.voices import VoiceStore

    store = VoiceStore.from_settings(settings)
    if store is None:
        print("error: no voiceprint store: set voices_dir or store_dir", file=sys.stderr)
    return store


def _voices_enroll(args: argparse.Namespace) -> int:
    from indexer.asr.diarization import SenkoDiarizer, SenkoModel, VoiceEmbedder
    from indexer.asr.engine import resolve_device
    from indexer.asr.enrollment import enroll
    from indexer.asr.metadata import MetadataSource
    from indexer.asr.pipeline import BatchSummary, expand_audio_paths
    from indexer.errors import EarshotError

    settings = get_settings()
    store = _voice_store(settings)
    if store is None:
        return EXIT_UNAVAILABLE
    missing = BatchSummary()
    files = expand_audio_paths(args.audio, missing)
    for failure in missing.failures:
        print(f"error: {failure}", file=sys.stderr)
    try:
        model = SenkoModel(resolve_device(args.device or settings.asr_device))
        result = enroll(
            args.manager, files, settings, store, SenkoDiarizer(model),
            VoiceEmbedder(model), MetadataSource(args.manifest),
        )  # fmt: skip
    except EarshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    for line in result.used:
        print(f"used {line}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for failure in result.failures:
        print(f"error: {failure}", file=sys.stderr)
    if result.voiceprint is None:
        print(f"error: no voiceprint stored for {args.manager}: no usable recording",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    print(
        f"enrolled {args.manager}: {result.voiceprint.speech_s:.1f} s of speech from "
        f"{len(result.used)} recording(s) into {store.path(args.manager)}",
        file=sys.stderr,
    )
    return EXIT_FAILED if result.failures or missing.failures else EXIT_OK


def _voices_list(args: argparse.Namespace) -> int:
    store = _voice_store(get_settings())
    if store is None:
        return EXIT_UNAVAILABLE
    for voiceprint in store.all():
        print(
            f"{voiceprint.manager_id}\t{voiceprint.speech_s:.1f} s\t{voiceprint.enrolled_at}\t"
            f"{len(voiceprint.sources)} recording(s)"
        )
    return EXIT_OK


def _voices_delete(args: argparse.Namespace) -> int:
    from indexer.errors import EarshotError

    store = _voice_store(get_settings())
    if store is None:
        return EXIT_UNAVAILABLE
    try:
        deleted = store.delete(args.manager)
    except EarshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not deleted:
        print(f"error: no voiceprint for {args.manager}", file=sys.stderr)
        return EXIT_FAILED
    print(f"deleted the voiceprint of {args.manager}", file=sys.stderr)
    return EXIT_OK


def _voices_reassign(args: argparse.Namespace) -> int:
    from indexer.asr.reassign import reassign
    from indexer.elastic import backend_errors, connect
    from indexer.errors import EarshotError
    from indexer.index.loader import load_calls
    from indexer.index.store import TranscriptStore
    from indexer.transcript import SourcedCall

    settings = get_settings()
    voices = _voice_store(settings)
    store = TranscriptStore.of(settings)
    if voices is None or store is None:
        print("error: reassigning needs the transcript store (store_dir)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    changed = []
    try:
        for call in store.calls():
            if args.manager and call.manager.id != args.manager:
                continue
            found = voices.get(call.manager.id) if call.manager.id else None
            updated = reassign(call, found.voice if found else None, settings.asr_voice_threshold)
            if updated is not None:
                changed.append(SourcedCall(str(store.path(call.call_id)), updated))
        print(f"roles changed in {len(changed)} call(s)", file=sys.stderr)
        if not changed:
            return EXIT_OK
        with backend_errors(settings.es_url):
            es = connect(settings)
            loaded = load_calls(es, settings, changed, tag=current_tagger(es, settings))
    except EarshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    for failure in loaded.failures:
        print(f"error: {failure}", file=sys.stderr)
    print(loaded.line(), file=sys.stderr)
    return EXIT_FAILED if loaded.failures else EXIT_OK
