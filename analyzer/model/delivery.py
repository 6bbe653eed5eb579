"""How the released binary receives over-the-air updates, and what to do next with this release."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Channel(enum.Enum):
    """The over-the-air mechanism built into the released binary."""

    MENDIX_OTA = "mendix-ota"
    CODEPUSH = "codepush"
    NONE = "none"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """The channel with the evidence that decided it (file, setting, value), for every report."""

    channel: Channel
    evidence: tuple[str, ...]
    stated: bool = False
    """True when ``.mxota.toml`` stated the channel instead of mxota detecting it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PushPlan:
    """What to do next: the steps, the push command when there is one, and what to hold back."""

    mechanism: str
    headline: str
    steps: tuple[str, ...]
    command: str | None = None
    """The full push command line (CodePush via Native Builder), when the release can be pushed."""
    held_back: tuple[str, ...] = ()
    """Changes that force a store release; holding them back would let the rest go over the air."""
