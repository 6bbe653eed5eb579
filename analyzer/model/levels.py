"""The severity levels of a finding. Declaration order is severity order: never compare the values."""

from __future__ import annotations

import enum
import functools


@functools.total_ordering
class Level(enum.Enum):
    """How a change can ship; ``max()`` of levels is the most severe."""

    NONE = "none"
    """Cannot reach the app: diagram layout, documentation, design-time-only documents."""
    OTA = "ota"
    """Ships in the JS bundle; push it."""
    OTA_REDEPLOY = "ota-redeploy"
    """Ships over the air, but the Mendix runtime must be redeployed first."""
    DATA_RISK = "data-risk"
    """Can ship over the air, but offline users can lose unsynced data or fail to sync."""
    STORE = "store"
    """Needs a new binary through the app stores."""

    @property
    def rank(self) -> int:
        """Position in severity order, 0 for the mildest."""
        return _ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, text: str) -> Level:
        """A level from its name, with a message listing the valid names when it is wrong."""
        for level in cls:
            if level.value == text:
                return level
        raise ValueError(f"unknown level {text!r}; levels are {', '.join(lv.value for lv in cls)}")


_ORDER: tuple[Level, ...] = tuple(Level)
