"""Trackers: named sets of phrases watched across every call — the records (``model``), their
index (``storage``), which trackers a call mentions (``tagging``), changing them and keeping
every call's tags true (``changes``), and counts per manager or period (``stats``)."""
