"""Whether the scorer workers could load the configured model: what each one reported when it started.

A scorer worker checks its backend before it takes any work (``rankers.scoring.worker``) and writes the outcome
here, in a Redis hash shared by every process (``<prefix>:scorers``, one field per worker node, the newest report
winning): the scorer identity it loaded or failed to load, when, and the error. A worker that cannot load its
model exits, so its failure report stays until a worker on that node starts again.

``verdict(identity)`` reads the reports for one scorer; the launch checklist, ``/healthz`` and the delivery page
show it, so a study arm is not launched on a model that does not load.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import orjson

from rankers.scoring import store

logger = logging.getLogger(__name__)

KEEP_S = 30 * 24 * 3600


def reports_key() -> str:
    return f"{store.prefix()}:scorers"


@dataclass(frozen=True)
class Report:
    node: str
    scorer: str
    loaded: bool
    at: dt.datetime
    error: str = ""


def report(node: str, scorer: str, *, error: str = "") -> None:
    """Record that worker ``node`` loaded ``scorer`` (no ``error``) or failed to. Never raises."""
    body = {"scorer": scorer, "loaded": not error, "at": dt.datetime.now(dt.UTC).isoformat(), "error": error}
    try:
        pipe = store.client().pipeline(transaction=False)
        pipe.hset(reports_key(), node, orjson.dumps(body))
        pipe.expire(reports_key(), KEEP_S)
        pipe.execute()
    except Exception:
        logger.warning("could not record that %s %s %s", node, "failed to load" if error else "loaded", scorer)


def reports() -> list[Report]:
    """Every worker node's newest report; raises if Redis cannot be read."""
    out = []
    for node, raw in store.client().hgetall(reports_key()).items():
        value = orjson.loads(raw)
        out.append(
            Report(
                node=node.decode() if isinstance(node, bytes) else str(node),
                scorer=value["scorer"],
                loaded=bool(value["loaded"]),
                at=dt.datetime.fromisoformat(value["at"]),
                error=value.get("error", ""),
            )
        )
    return sorted(out, key=lambda r: r.at, reverse=True)


@dataclass(frozen=True)
class Verdict:
    """What the workers said about one scorer: ``failed`` reports block a launch; ``loaded`` ones vouch for it."""

    scorer: str
    loaded: list[Report]
    failed: list[Report]
    readable: bool = True

    @property
    def status(self) -> str:
        """``failed`` (a worker could not load it), ``loaded``, ``unknown`` (no report) or ``unreadable``."""
        if not self.readable:
            return "unreadable"
        return "failed" if self.failed else "loaded" if self.loaded else "unknown"

    def describe(self) -> str:
        if not self.readable:
            return "The scorer workers' reports could not be read from Redis."
        if self.failed:
            return " ".join(
                f"Scorer worker {r.node} could not load {r.scorer} ({r.at:%Y-%m-%d %H:%M} UTC): {r.error}"
                for r in self.failed
            )
        if self.loaded:
            nodes = ", ".join(r.node for r in self.loaded)
            return f"{self.scorer} loaded by {nodes} (last at {self.loaded[0].at:%Y-%m-%d %H:%M} UTC)."
        return f"No scorer worker has reported loading {self.scorer} yet."


def verdict(scorer: str) -> Verdict:
    """The newest report of each worker node for ``scorer``. Never raises."""
    try:
        mine = [r for r in reports() if r.scorer == scorer]
    except Exception:
        logger.warning("scorer reports unavailable", exc_info=True)
        return Verdict(scorer, [], [], readable=False)
    return Verdict(scorer, [r for r in mine if r.loaded], [r for r in mine if not r.loaded])
