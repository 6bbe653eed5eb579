"""A team's ``.mxota.toml``: threshold, channel, native modules known to be in the binary, rule level
overrides and waivers. Frozen data; read by ``analyzer.load.config``."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from analyzer.model.delivery import Channel
from analyzer.model.levels import Level


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiver:
    """A recorded acceptance of one finding: which rule, on which element, why, by whom, until when."""

    rule: str
    element: str
    """A qualified name (or a file path, a native setting key) or an element GUID."""
    reason: str
    owner: str
    expires: datetime.date


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything ``.mxota.toml`` may say; every field optional."""

    path: str | None = None
    fail_on: Level | None = None
    ota_channel: Channel | None = None
    require_ota_channel: bool = False
    native_dependencies_in_binary: tuple[str, ...] = ()
    """``name`` or ``name@version`` of native modules the released binary is known to contain."""
    levels: Mapping[str, Level] = field(default_factory=lambda: MappingProxyType({}))
    waivers: tuple[Waiver, ...] = ()


NO_CONFIG = Config()
