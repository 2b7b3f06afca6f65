"""The side-by-side table of compare.py: measured rows, each optionally compared with a reference and a target."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measured:
    """One measured path."""

    label: str
    connections: int
    rps: float | None  # None: not a throughput measurement (TTFB, in-process embedding)
    p50_ms: float
    p99_ms: float
    check: str = ""  # how we know the path taken was the one named (X-Cache, upstream call count)


@dataclass(frozen=True, slots=True)
class Target:
    """A goal on one row, judged on its comparison."""

    text: str
    met: Callable[[Comparison], bool]


@dataclass(frozen=True, slots=True)
class Comparison:
    """A row against its reference: req/s ratio and p50 added, minus any subtracted time (the embedding)."""

    row: Measured
    reference: Measured | None = None
    reference_text: str = ""
    subtract_ms: float = 0.0  # also taken off the added p50 (e.g. the embedding, which the reference does not do)
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.row.rps is None or not self.reference.rps:
            return None
        return self.row.rps / self.reference.rps

    @property
    def added_ms(self) -> float | None:
        if self.reference is None:
            return None
        return self.row.p50_ms - self.reference.p50_ms - self.subtract_ms


def at_least_ratio(minimum: float) -> Target:
    return Target(f"req/s ≥ {minimum}x", lambda c: c.ratio is not None and c.ratio >= minimum)


def at_most_added(maximum_ms: float, what: str = "") -> Target:
    return Target(f"added p50 ≤ {maximum_ms:g} ms{what}", lambda c: c.added_ms is not None and c.added_ms <= maximum_ms)


def at_least_rps(minimum: float) -> Target:
    return Target(f"≥ {minimum:,.0f} req/s", lambda c: c.row.rps is not None and c.row.rps >= minimum)


HEADER = (
    "| path | c | req/s | p50 ms | p99 ms | compared with | req/s ratio | added p50 ms | target | met | check |\n"
    "|---|---:|---:|---:|---:|---|---:|---:|---|---|---|"
)


def table(comparisons: list[Comparison]) -> str:
    """The markdown table, one line per comparison."""
    return "\n".join([HEADER, *(_line(comparison) for comparison in comparisons)])


def _line(c: Comparison) -> str:
    row = c.row
    rps = f"{row.rps:,.0f}" if row.rps is not None else "-"
    ratio = f"{c.ratio:.2f}x" if c.ratio is not None else ""
    added = f"{c.added_ms:+.2f}" if c.added_ms is not None else ""
    target = c.target.text if c.target else ""
    met = ("**yes**" if c.target.met(c) else "**no**") if c.target else ""
    cells = [row.label, str(row.connections), rps, f"{row.p50_ms:.2f}", f"{row.p99_ms:.2f}", c.reference_text]
    return "| " + " | ".join([*cells, ratio, added, target, met, row.check]) + " |"


def document(title: str, command: str, facts: dict[str, str], notes: list[str], comparisons: list[Comparison]) -> str:
    """The whole results file: command, machine, the table, then how each row was taken."""
    lines = [f"# {title}", "", "Command:", "", "```sh", command, "```", ""]
    lines += [f"- {name}: {value}" for name, value in facts.items()]
    lines += ["", table(comparisons), ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
