"""Report and result files served from pre-signed-looking URLs that expire, as S3 serves Amazon's downloads.

A URL carries ``X-Amz-Expires`` and an HMAC ``X-Amz-Signature`` over the path and expiry; an expired or
tampered URL gets S3's 403 ``AccessDenied`` XML. Content comes from a callable, so a 1 GB report is generated
as it streams rather than held in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

Chunks = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class StoredFile:
    chunks: Chunks
    content_type: str
    content_encoding: str | None = None
    size: int | None = None


class Files:
    def __init__(self, base_url: Callable[[], str]) -> None:
        self._base_url = base_url
        self._files: dict[str, StoredFile] = {}
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def put(self, name: str, stored: StoredFile) -> None:
        with self._lock:
            self._files[name] = stored

    def put_bytes(self, name: str, data: bytes, content_type: str, content_encoding: str | None = None) -> None:
        self.put(name, StoredFile(lambda: [data], content_type, content_encoding, len(data)))

    def url(self, name: str, expires_s: int) -> str:
        """A URL for ``name`` valid for ``expires_s`` seconds."""
        expires_at = int(time.time()) + expires_s
        query = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": str(expires_s),
                 "X-Amz-Date": str(expires_at - expires_s), "X-Amz-Signature": self._sign(name, expires_at)}
        return f"{self._base_url()}/files/{name}?{urlencode(query)}"

    def open(self, name: str, query: dict[str, str]) -> StoredFile | None:
        """The file, if the URL's signature is valid and it has not expired; else None."""
        try:
            expires_at = int(query["X-Amz-Date"]) + int(query["X-Amz-Expires"])
        except (KeyError, ValueError):
            return None
        if time.time() > expires_at or not hmac.compare_digest(self._sign(name, expires_at),
                                                                 query.get("X-Amz-Signature", "")):
            return None
        with self._lock:
            return self._files.get(name)

    def _sign(self, name: str, expires_at: int) -> str:
        return hmac.new(self._key, f"{name}:{expires_at}".encode(), hashlib.sha256).hexdigest()


def gzipped(texts: Iterable[str], level: int = 6) -> Iterator[bytes]:
    """``texts`` as one gzip file, in compressed chunks as they come (mtime 0: the same texts give the same bytes)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: the gzip wrapper
    for text in texts:
        out = compressor.compress(text.encode())
        if out:
            yield out
    yield compressor.flush()
