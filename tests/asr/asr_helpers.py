"""Helpers the ASR tests share: text normalisation for WER, and a tiny local wav2vec2 model."""

from __future__ import annotations

import json
import re
from pathlib import Path

from indexer.transcript import Call, Word


def normalise(text: str) -> str:
    """Lower case, ё → е, punctuation dropped, whitespace collapsed: how WER is scored here."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold().replace("ё", "е")).split())


def call_words(call: Call) -> list[tuple[Word, str]]:
    """Every word of a call with the role of its utterance."""
    return [(word, u.role.value) for u in call.utterances for word in u.words]


def build_tiny_aligner(directory: Path) -> Path:
    """A randomly initialised character-level wav2vec2 CTC model, saved like a real one.

    It aligns badly (its weights are random) but exercises exactly the code path a real
    alignment model takes: WhisperX loads it from the local directory and force-aligns the
    transcript with it. Deterministic (fixed seed), ~0.1 MB, built in a second.
    """
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    directory.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz'")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    vocab.update({c: i + 5 for i, c in enumerate(letters)})
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(directory / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(directory)
    return directory
