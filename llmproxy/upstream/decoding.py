"""Response bodies decoded from their Content-Encoding (gzip, deflate, br; several in order), chunk by chunk.

The session leaves bodies as they came (a raw relay must not change them); the proxy decodes what it reads
itself, as httpx did before: unknown encodings and `identity` are passed through unchanged.
"""

from __future__ import annotations

import zlib
from typing import Protocol

try:  # brotli is optional, as it is for aiohttp and httpx (the Accept-Encoding they send says br only with it)
    import brotli

    HAS_BROTLI = True
except ImportError:  # pragma: no cover - installed here
    HAS_BROTLI = False


# What a request without its own Accept-Encoding asks for: only encodings this module can undo (aiohttp's
# default would add zstd wherever a zstd library is installed).
ACCEPT_ENCODING = "gzip, deflate, br" if HAS_BROTLI else "gzip, deflate"


class DecodingError(Exception):
    """The body is not valid in its declared Content-Encoding."""


class _Decoder(Protocol):
    def decode(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Zlib:
    """gzip, or deflate (which servers send both with and without the zlib header)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._first = True
        self._inner = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes) -> bytes:
        was_first, self._first = self._first, False
        try:
            return self._inner.decompress(data)
        except zlib.error as exc:
            if was_first and not self._gzip:  # a raw deflate stream, without the zlib header
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(data)
            raise DecodingError(str(exc)) from exc

    def flush(self) -> bytes:
        try:
            return self._inner.flush()
        except zlib.error as exc:
            raise DecodingError(str(exc)) from exc


class _Brotli:
    def __init__(self) -> None:
        self._inner = brotli.Decompressor()

    def decode(self, data: bytes) -> bytes:
        try:
            decoded: bytes = self._inner.process(data)
        except brotli.error as exc:
            raise DecodingError(str(exc)) from exc
        return decoded

    def flush(self) -> bytes:
        return b""


def _decoder(encoding: str) -> _Decoder | None:
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if encoding == "deflate":
        return _Zlib(gzip=False)
    if encoding == "br" and HAS_BROTLI:
        return _Brotli()
    return None


class BodyDecoder:
    """Decodes one body: the encodings of its Content-Encoding header, undone last-applied first."""

    def __init__(self, content_encoding: str) -> None:
        found = (_decoder(part.strip().lower()) for part in reversed(content_encoding.split(",")))
        self._decoders = [decoder for decoder in found if decoder is not None]

    @property
    def identity(self) -> bool:
        """Whether the body is sent as it is (no encoding the proxy knows)."""
        return not self._decoders

    def decode(self, data: bytes) -> bytes:
        """The decoded bytes of the next chunk (possibly none yet).

        Raises:
            DecodingError: the bytes are not valid in the declared encoding.
        """
        for decoder in self._decoders:
            data = decoder.decode(data)
        return data

    def flush(self) -> bytes:
        """What the decoders still held at the end of the body.

        Raises:
            DecodingError: the body ended in the middle of its encoding.
        """
        data = b""
        for decoder in self._decoders:
            data = decoder.decode(data) + decoder.flush() if data else decoder.flush()
        return data
