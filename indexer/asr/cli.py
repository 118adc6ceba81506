"""``transcribe`` and ``ingest``: recordings → transcripts (→ Elasticsearch).

    transcribe AUDIO... --out DIR   write DIR/<call_id>.json per recording
    ingest AUDIO... [--out DIR]     the same, then load every good transcript
    ... --ray [ADDRESS]             recognition on a Ray cluster (indexer/asr/distributed.py)

AUDIO may be files or directories (searched for wav, mp3, ogg/opus, flac, m4a). Exit status:
0 when every recording succeeded, 1 when any failed (each named on stderr), 2 for an unusable
model or an unreachable Elasticsearch. whisperx and torch are imported only when a command
runs, so the other ``python -m indexer`` commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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


def _run_batch(args: argparse.Namespace, settings: Settings, out: Path) -> Any:
    from indexer.asr.metadata import MetadataSource
    from indexer.asr.pipeline import Transcriber, run_batch

    def batch(runner: Any = None) -> Any:
        return run_batch(
            args.audio,
            out,
            settings,
            lambda: Transcriber.from_settings(settings),
            MetadataSource(args.manifest),
            force=args.force,
            progress=not args.quiet,
            runner=runner,
        )

    if args.ray is None:
        return batch()
    from indexer.asr.distributed import RayRunner  # ray is imported only for --ray

    with RayRunner(
        settings, args.ray, workers=args.ray_workers, gpu_share=args.ray_gpu_share
    ) as runner:
        return batch(runner)


def _transcribe(args: argparse.Namespace) -> int:
    from indexer.errors import EarshotError

    settings = _settings(args)
    try:
        summary = _run_batch(args, settings, args.out)
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
        summary = _run_batch(args, settings, args.out or settings.transcripts_dir)
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
