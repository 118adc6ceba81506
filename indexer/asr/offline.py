"""The one rule that keeps transcription off the network: models come from local paths only.

Called before the first import of WhisperX (and what it pulls in). Besides the hub switches,
two libraries phone home on their own: pyannote.audio 4 sends usage metrics to
otel.pyannote.ai (on unless ``PYANNOTE_METRICS_ENABLED`` says otherwise), and onnxruntime (the
silero VAD) sends telemetry events to mobile.events.data.microsoft.com.
tests/asr/test_asr_promises.py runs the CLI with every endpoint and proxy pointed at a counting
port and checks nothing connects.
"""

from __future__ import annotations

import os


def stay_offline() -> None:
    # A hub lookup by accident fails fast instead of reaching out.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Forced, not defaulted: the product promises never to reach out, whatever the environment.
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
    # onnxruntime starts its telemetry when the library loads, before any call could stop it.
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    try:
        import onnxruntime
    except ImportError:
        return
    onnxruntime.disable_telemetry_events()
