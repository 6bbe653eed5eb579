"""Decide the released binary's over-the-air channel from the base snapshot (the binary in the stores).

Mendix OTA: Studio Pro 9.7 or newer and ``OtaEnabled`` on the native profile. App Center CodePush:
the ``appCenterOTA`` capability or a CodePush deployment key in the template (Studio Pro 8/9).
None: the files show positively that neither is on. Unknown: the files cannot tell.
Sources: knowledge/native-and-rules.md §1.2 (D-OTA, D-OTA-AC, NT-CL), §4.
"""

from __future__ import annotations

from analyzer.graph.build import ModelGraph
from analyzer.graph.queries import NATIVE_PROFILE
from analyzer.model.delivery import Channel, Delivery
from analyzer.model.versions import version_matches

MENDIX_OTA_SINCE = ">=9.7.0"
"""Mendix OTA exists from Studio Pro 9.7 (D-OTA)."""
NO_CODEPUSH_SINCE = ">=10.11.0"
"""Studio Pro 10.11 needs native template 8.2.3 or newer; CodePush left the template in 8.0.4 (NT-CL)."""


def _matches(version: str, pattern: str) -> bool:
    try:
        return version_matches(version, pattern)
    except ValueError:
        return False


def detect_delivery(graph: ModelGraph) -> Delivery:
    """The channel of the binary built from this snapshot, with its evidence."""
    snapshot = graph.index.snapshot
    version = snapshot.meta.product_version
    profiles = snapshot.elements.of_type(NATIVE_PROFILE)
    if not profiles:
        return Delivery(channel=Channel.NONE, evidence=("no native navigation profile: this is not a native app",))
    evidence: list[str] = []
    ota_on = [p for p in profiles if p.properties.get("OtaEnabled") is True]
    if ota_on and _matches(version, MENDIX_OTA_SINCE):
        names = ", ".join(p.name or "native profile" for p in ota_on)
        return Delivery(
            channel=Channel.MENDIX_OTA,
            evidence=(f"navigation profile {names}: OtaEnabled = true (Studio Pro {version})",),
        )
    codepush: list[str] = []
    for setting in snapshot.native:
        app_center = setting.key.endswith("capability.appCenterOTA.enabled")
        if setting.kind == "config" and app_center and setting.value == "true":
            codepush.append(f"nativemobile/.config {setting.key} = true")
        if setting.kind == "template" and setting.key == "ios.CodePushKey" and setting.value.strip():
            codepush.append("native template Info.plist CodePushKey is set")
        if setting.kind == "template" and setting.key == "capability.android.appCenterOTA" and setting.value == "true":
            codepush.append("native template capabilities.android.json appCenterOTA = true")
    if codepush:
        return Delivery(channel=Channel.CODEPUSH, evidence=tuple(codepush))
    has_ota_flag = any("OtaEnabled" in p.properties for p in profiles)
    if has_ota_flag:
        evidence.append(f"navigation profile {profiles[0].name or ''}: OtaEnabled = false".replace("  ", " "))
    if _matches(version, NO_CODEPUSH_SINCE) and has_ota_flag:
        evidence.append(
            f"Studio Pro {version} needs native template 8.2.3 or newer, which no longer contains CodePush"
        )
        return Delivery(channel=Channel.NONE, evidence=tuple(evidence))
    if any(s.kind == "config" and "appCenterOTA" in s.key for s in snapshot.native) and has_ota_flag:
        evidence.append("nativemobile/.config: appCenterOTA capability is off")
        return Delivery(channel=Channel.NONE, evidence=tuple(evidence))
    evidence.append(
        f"Studio Pro {version}: the Native Builder / App Center settings that decide CodePush are not in the "
        "app's files; state the channel in .mxota.toml (ota_channel)"
    )
    return Delivery(channel=Channel.UNKNOWN, evidence=tuple(evidence))
