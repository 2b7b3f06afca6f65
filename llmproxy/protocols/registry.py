"""The wire protocols the proxy caches, by name and by path: the one list a new protocol is added to."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from llmproxy.protocols.base import WireProtocol
from llmproxy.protocols.chat import CHAT
from llmproxy.protocols.completions import COMPLETIONS
from llmproxy.protocols.embeddings import EMBEDDINGS
from llmproxy.protocols.responses import RESPONSES

PROTOCOLS: tuple[WireProtocol, ...] = (CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES)
PROTOCOL_NAMES: tuple[str, ...] = tuple(protocol.name for protocol in PROTOCOLS)
_BY_NAME = {protocol.name: protocol for protocol in PROTOCOLS}
_BY_PATH = {protocol.path: protocol for protocol in PROTOCOLS}


def by_name(name: str) -> WireProtocol:
    """The protocol of an endpoint kind (as stored in entries and the catalog).

    Raises:
        KeyError: no protocol has this name.
    """
    return _BY_NAME[name]


def by_path(path: str) -> WireProtocol | None:
    """The protocol served at a `/v1/...` path, or None (the path is passed through)."""
    return _BY_PATH.get(path)


def _known(name: str) -> str:
    if name not in _BY_NAME:
        raise ValueError(f"must be one of {', '.join(PROTOCOL_NAMES)}")
    return name


# An endpoint kind where data arrives from outside (Redis, admin queries): one of the protocols' names.
ProtocolName = Annotated[str, AfterValidator(_known)]
