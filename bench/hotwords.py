"""Does offering the vocabulary to the recognizer help? Synthetic calls where the terms are
spoken (espeak-ng for English, festival for Russian, as scripts/make-test-audio), transcribed
with and without the terms as faster-whisper ``hotwords``: recall of the terms as spelled in
the vocabulary, word error rate, and the CPU time each costs. ``scripts/bench-hotwords``
prints the table in docs/asr.md.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16_000
GAP_S = 0.8

# (what the voice is given, the reference transcript). The voice text spells a brand the way
# a person says it; the reference writes it as the vocabulary does.
SENTENCES: dict[str, list[tuple[str, str]]] = {
    "en": [
        (
            "We moved from Salesforce to HubSpot last year.",
            "We moved from Salesforce to HubSpot last year.",
        ),
        (
            "Our sales team works in amo C R M every day.",
            "Our sales team works in amoCRM every day.",
        ),
        (
            "The leads come from Pipedrive and Zendesk.",
            "The leads come from Pipedrive and Zendesk.",
        ),
        ("Can you connect it to Bitrix twenty four?", "Can you connect it to Bitrix24?"),
        (
            "We compared HubSpot with Salesforce and amo C R M.",
            "We compared HubSpot with Salesforce and amoCRM.",
        ),
        ("Send the invoice through Zendesk please.", "Send the invoice through Zendesk please."),
    ],
    "ru": [
        (
            "мы перешли с сейлсфорс на хабспот в прошлом году",
            "мы перешли с Salesforce на HubSpot в прошлом году",
        ),
        ("у нас битрикс двадцать четыре и амо си ар эм", "у нас Битрикс24 и amoCRM"),
        ("бухгалтерия работает в один эс", "бухгалтерия работает в 1С"),
        ("менеджеры ведут сделки в мегаплан", "менеджеры ведут сделки в Мегаплан"),
        (
            "можно подключить хабспот к битрикс двадцать четыре",
            "можно подключить HubSpot к Битрикс24",
        ),
        ("клиент сравнивал амо си ар эм и сейлсфорс", "клиент сравнивал amoCRM и Salesforce"),
    ],
}
TERMS: dict[str, list[str]] = {
    "en": ["Salesforce", "HubSpot", "amoCRM", "Pipedrive", "Zendesk", "Bitrix24"],
    "ru": ["Salesforce", "HubSpot", "Битрикс24", "amoCRM", "1С", "Мегаплан"],
}


def synthesize(text: str, language: str, work: Path) -> np.ndarray:
    import soundfile as sf

    raw, script, resampled = work / "utt.wav", work / "utt.txt", work / "utt16.wav"
    if language == "en":
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    else:
        script.write_text(text + "\n", encoding="utf-8")
        subprocess.run(
            ["text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", str(script), "-o", str(raw)],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(raw),
            "-ac",
            "1",
            "-ar",
            str(RATE),
            str(resampled),
        ],
        check=True,
    )
    samples, _ = sf.read(resampled, dtype="float32")
    return np.asarray(samples, dtype=np.float32)


def make_call_audio(language: str, out: Path) -> Path:
    """All sentences of a language, voiced, one after another, as one mono 16 kHz file."""
    import soundfile as sf

    gap = np.zeros(int(GAP_S * RATE), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        parts = [gap]
        for voiced, _ in SENTENCES[language]:
            parts += [synthesize(voiced, language, Path(tmp)), gap]
    path = out / f"hotwords_{language}.wav"
    sf.write(path, np.concatenate(parts), RATE)
    return path


def _normalise(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", text.casefold().replace("ё", "е")).split()


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(" ".join(_normalise(reference)), " ".join(_normalise(hypothesis))))


def _squashed(text: str) -> str:
    return re.sub(r"[^\w]", "", text.casefold())


def term_recall(reference: str, hypothesis: str, terms: list[str]) -> tuple[int, int]:
    """(terms said, terms written as the vocabulary spells them), counted per occurrence."""
    said = found = 0
    squashed = _squashed(hypothesis)
    for term in terms:
        wanted = _squashed(term)
        count = len(re.findall(re.escape(wanted), _squashed(reference)))
        said += count
        found += min(count, len(re.findall(re.escape(wanted), squashed)))
    return said, found


@dataclass
class Run:
    language: str
    hotwords: bool
    text: str
    wer: float
    said: int
    found: int
    cpu_s: float
    wall_s: float


def measure(out: Path, repeats: int = 2, controls: Path | None = None) -> list[Run]:
    """Each language's call transcribed without and with hotwords (best CPU time of
    ``repeats``; the model is loaded once and warmed up first). With ``controls`` (the
    directory of scripts/make-test-audio), its en_call and ru_call too — calls where no term
    is said, to see what the offered terms cost there."""
    import json
    from dataclasses import replace

    from indexer.asr.audio import decode, probe
    from indexer.asr.metadata import MetadataSource
    from indexer.asr.pipeline import Transcriber
    from indexer.settings import Settings

    plain = Transcriber.from_settings(Settings())
    runs: list[Run] = []
    cases: list[tuple[str, Path, str]] = []
    for language in ("en", "ru"):
        reference = " ".join(text for _, text in SENTENCES[language])
        cases.append((language, make_call_audio(language, out), reference))
    for name in ("en_call", "ru_call") if controls else ():
        assert controls is not None
        truth = json.loads((controls / f"{name}.truth.json").read_text(encoding="utf-8"))
        turns = sorted(truth["turns"], key=lambda t: t["start"])
        reference = " ".join(t["text"] for t in turns)
        cases.append(
            (f"{truth['language']} (control: {name})", controls / truth["audio"], reference)
        )
    for label, path, reference in cases:
        language = label[:2]
        audio = probe(path)
        decoded = decode(audio, 3600)
        meta = replace(MetadataSource().lookup(audio), language=language)
        plain.transcribe(decoded, meta)  # warm-up
        for offered in (False, True):
            hotwords = {language: ", ".join(TERMS[language])} if offered else {}
            transcriber = Transcriber(plain.settings, plain.engine, hotwords=hotwords)
            best: tuple[float, float, str] | None = None
            for _ in range(repeats):
                cpu, wall = time.process_time(), time.perf_counter()
                call = transcriber.transcribe(decoded, meta)
                took = (time.process_time() - cpu, time.perf_counter() - wall)
                text = " ".join(u.text for u in call.utterances)
                if best is None or took[0] < best[0]:
                    best = (took[0], took[1], text)
            assert best is not None
            said, found = term_recall(reference, best[2], TERMS[language])
            runs.append(
                Run(label, offered, best[2], wer(reference, best[2]), said, found, *best[:2])
            )
    return runs
