"""A figure of the bench: what was measured, its value, and whether it met its target."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Figure:
    key: str
    """Stable name, for comparing runs: `single_jobs`, `open_loop_p99`, ..."""
    label: str
    value: float | None
    unit: str
    store: str | None = None
    """The store it was measured on; None for figures that use no store."""
    complete: bool = True
    """False when the budget ran out first: the value is what was reached by then."""
    detail: str = ""
    target: str = ""
    met: bool | None = None

    @classmethod
    def rate(
        cls,
        key: str,
        label: str,
        *,
        count: int,
        of: int,
        seconds: float,
        unit: str,
        complete: bool,
        store: str | None = None,
        detail: str = "",
    ) -> Figure:
        """`count` things in `seconds`; when incomplete, says how many of `of` were done."""
        value = count / seconds if seconds > 0 and count > 0 else None
        if not complete:
            detail = f"{count:,} of {of:,} in {seconds:.0f} s; " + detail
        return cls(key, label, value, unit, store, complete, detail.strip("; "))

    def with_target(self, text: str, met: bool | None) -> Figure:
        """The target's words, and whether it was met (never, by an incomplete figure)."""
        self.target = text
        self.met = None if met is None else (met and self.complete)
        return self

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        return cls(**data)

    def shown(self) -> str:
        """The value with its unit, as the table prints it."""
        if self.value is None:
            return "not reached" if not self.complete else "none"
        if self.unit == "×":
            text = f"{self.value:.2f}×"
        elif self.unit == "ms":
            text = f"{self.value:,.0f} ms" if self.value >= 10 else f"{self.value:.1f} ms"
        elif self.unit in ("s", "MB"):
            text = f"{self.value:,.1f} {self.unit}"
        else:
            text = f"{self.value:,.0f} {self.unit}"
        return text if self.complete else f"{text} (incomplete)"
