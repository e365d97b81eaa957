"""Per-text score cache: an in-process LRU in front of an optional shared Django cache (e.g. Redis).

An entry is keyed by sha256(backend name, text) and remembers which attributes were asked for, so a request for
a subset of them is a hit. Shared-cache errors are logged and treated as misses: the cache never fails scoring.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    asked: frozenset[str]
    scores: Mapping[str, float]

    def covers(self, attributes: Iterable[str]) -> bool:
        return self.asked.issuperset(attributes)


def text_key(backend_name: str, text: str) -> str:
    digest = hashlib.sha256(f"{backend_name}\0{text}".encode()).hexdigest()
    return f"prc:score:{digest}"


class LRU:
    """A small thread-safe LRU mapping of key -> Entry."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                self._data.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class ScoreCache:
    def __init__(self, maxsize: int, shared: Any = None, ttl_s: int | None = None) -> None:
        self.local = LRU(maxsize)
        self.shared = shared  # a django.core.cache backend, or None
        self.ttl_s = ttl_s

    def get_many(self, keys: Iterable[str], attributes: Iterable[str]) -> dict[str, Entry]:
        wanted = frozenset(attributes)
        found: dict[str, Entry] = {}
        missing: list[str] = []
        for key in keys:
            entry = self.local.get(key)
            if entry is not None and entry.covers(wanted):
                found[key] = entry
            else:
                missing.append(key)
        if missing and self.shared is not None:
            for key, entry in self._shared_get(missing).items():
                if entry.covers(wanted):
                    found[key] = entry
                    self.local.put(key, entry)
        return found

    def put_many(self, entries: Mapping[str, Entry]) -> None:
        for key, entry in entries.items():
            self.local.put(key, entry)
        if entries and self.shared is not None:
            try:
                payload = {k: (sorted(e.asked), dict(e.scores)) for k, e in entries.items()}
                self.shared.set_many(payload, timeout=self.ttl_s)
            except Exception:
                logger.warning("shared score cache write failed", exc_info=True)

    def _shared_get(self, keys: list[str]) -> dict[str, Entry]:
        try:
            raw = self.shared.get_many(keys)
        except Exception:
            logger.warning("shared score cache read failed", exc_info=True)
            return {}
        entries: dict[str, Entry] = {}
        for key, value in raw.items():
            try:
                asked, scores = value
                entries[key] = Entry(asked=frozenset(asked), scores={str(k): float(v) for k, v in scores.items()})
            except (TypeError, ValueError, AttributeError):
                continue
        return entries

    def clear(self) -> None:
        self.local.clear()
