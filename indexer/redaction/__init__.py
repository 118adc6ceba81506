"""Personal data redaction: find card numbers, phones, e-mails, documents and addresses in a
call's words, and mask them in the transcript (and bleep them in the recording).

``classes`` (the class tokens), ``digits`` (spoken and written digit sequences), ``detect``
(the rules), ``policy`` (what is applied to a call), ``audio`` (bleeping a recording). This
module imports nothing itself: the search rules (``indexer.search.text``) read the class tokens from
``indexer.redaction.classes`` without pulling in the detector.
"""
