"""Recognizer tokens that belong together, joined back into the word that was written.

Whisper's word-timestamp step starts a new "word" at every punctuation token, so "6.20" comes
back as " 6" + ".20", "a.m." as " a" + ".m.", "т.е." as " т" + ".е.", an e-mail address as
" ivan" + "@mail" + ".ru". Rebuilt with a space between words, the utterance then reads
"6 .20 a .m." and a search for ``6.20`` finds nothing. The recognizer marks where a word really
begins: its token starts with a space. A piece that does not, and that is glued to its
neighbour by a joining character (a point, comma, colon, slash, ``@``, hyphen, currency or
percent sign), is put back onto the previous word: one word, the first piece's start, the last
piece's end.

Only pieces glued by such a character are joined, so languages written without spaces (whose
tokens never start with one) are left as the recognizer split them.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.asr.schema import TimedWord

# A piece starting with one of these continues the word before it ("6" + ".20", "a" + ".m.").
_CONTINUES = frozenset(".,:/@-_%‰'’")
# A word ending with one of these is continued by the piece after it ("$" + "15", "ivan." + "ru").
_OPEN = frozenset(".,:/@-_$€£₽¥#")


def _joins(previous: str, piece: str) -> bool:
    if not previous.strip() or not piece or piece[0].isspace():
        return False
    return piece[0] in _CONTINUES or previous[-1] in _OPEN


def merge_tokens(words: Sequence[TimedWord]) -> list[TimedWord]:
    """``words`` with every piece that continues the previous word joined onto it.

    ``words`` keep the recognizer's raw text (a leading space where a word begins). The joined
    word spans from the first timed piece's start to the last timed piece's end (untimed when no
    piece is timed) and keeps the lowest piece score: the word is as doubtful as its worst part.
    """
    merged: list[list[TimedWord]] = []
    for word in words:
        if merged and _joins(merged[-1][-1].text, word.text):
            merged[-1].append(word)
        else:
            merged.append([word])
    return [_joined(pieces) for pieces in merged]


def _joined(pieces: list[TimedWord]) -> TimedWord:
    if len(pieces) == 1:
        return pieces[0]
    starts = [p.start for p in pieces if p.start is not None]
    ends = [p.end for p in pieces if p.end is not None]
    scores = [p.score for p in pieces if p.score is not None]
    return TimedWord(
        text="".join(p.text for p in pieces),
        start=starts[0] if starts else None,
        end=ends[-1] if ends else None,
        score=min(scores) if scores else None,
    )
