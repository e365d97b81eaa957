"""What a cached score is: an entry per (scorer, text), its wire form, and a small in-process LRU.

Texts are identified by ``text_digest`` (sha256 of the text); the scorer by ``identity`` (the backend and the
model it runs), so scores of two models are never mixed. The shared store of entries is Redis, written by the
scorer workers and read by every web process (``rankers.scoring.store``); the LRU only spares a web process the
round trip for posts it has already seen. It keeps them encoded: bytes are invisible to the garbage
collector, whereas a hundred thousand decoded entries made every full collection of a web process slower.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

V = TypeVar("V")


@dataclass(frozen=True)
class Entry:
    asked: frozenset[str]
    scores: Mapping[str, float]

    def covers(self, attributes: Iterable[str]) -> bool:
        return self.asked.issuperset(attributes)

    def encode(self) -> bytes:
        return orjson.dumps({"asked": sorted(self.asked), "scores": dict(self.scores)})

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Entry | None:
        """The entry stored as ``raw``; None for a missing or unreadable value (a miss, never an error)."""
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)
            return cls(frozenset(map(str, value["asked"])), {str(k): float(v) for k, v in value["scores"].items()})
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, AttributeError):
            return None


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class LRU(Generic[V]):
    """A small thread-safe LRU mapping of key -> value."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: V) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def covering(found: Mapping[str, Entry | None], attributes: Iterable[str]) -> dict[str, Entry]:
    """The entries in ``found`` that have every one of ``attributes``."""
    wanted = frozenset(attributes)
    return {key: entry for key, entry in found.items() if entry is not None and entry.covers(wanted)}
