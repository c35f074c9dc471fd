"""The sandbox's logs never show herald's callback token.

The Veesing push URLs end in herald's secret token (the sandbox pushes to them, and httpx logs
each request it makes). `MaskPushTokens` replaces each configured URL's last path segment by
`***` in every record; `install` puts it on the root logger's handlers and the handler of last
resort.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from worker.sandbox.config import SandboxConfig

MASK = "***"


def push_tokens(config: SandboxConfig) -> list[str]:
    """The last path segment of each Veesing push URL: herald's callback token."""
    urls = (
        config.veesing_sms_push_url,
        config.veesing_mms_push_url,
        config.veesing_voice_push_url,
    )
    segments = {urlsplit(url).path.rstrip("/").rpartition("/")[2] for url in urls if url}
    return sorted((s for s in segments if s), key=len, reverse=True)


class MaskPushTokens(logging.Filter):
    def __init__(self, tokens: list[str]) -> None:
        super().__init__()
        self._tokens = tokens

    def _mask(self, text: str) -> str:
        for token in self._tokens:
            text = text.replace(token, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._tokens:
            return True
        if isinstance(record.msg, str):
            record.msg = self._mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._mask(a) if isinstance(a, str) else a for a in record.args)
        try:
            message = record.getMessage()
        except Exception:
            return True
        if self._mask(message) != message:
            record.msg, record.args = self._mask(message), ()
        return True


def install(config: SandboxConfig) -> None:
    mask = MaskPushTokens(push_tokens(config))
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, MaskPushTokens) for f in handler.filters):
            handler.addFilter(mask)
