"""What to do next, given the verdict (the full push plan per OTA mechanism comes with delivery detection)."""

from __future__ import annotations

from analyzer.model.levels import Level

PLAN_STEPS: dict[Level, tuple[str, ...]] = {
    Level.NONE: ("Nothing in this change reaches the app; no release is needed for it.",),
    Level.OTA: (
        "Build the JS bundle and push it over the air to the binary version in the stores.",
        "Users get it on the next cold start of the app.",
    ),
    Level.OTA_REDEPLOY: (
        "Redeploy the Mendix runtime first (the server-side model changed).",
        "Then push the bundle over the air (with Mendix OTA, the redeploy is the push).",
        "Old bundles keep running against the new runtime until users restart: check the changes below.",
    ),
    Level.DATA_RISK: (
        "Do not push until each data-risk finding has a mitigation or a recorded acceptance (waiver).",
        "Prefer an in-between, backward-compatible release, and push the destructive change only after "
        "devices have synced.",
        "Redeploy the runtime, then push over the air with a staged rollout where the mechanism allows it.",
    ),
    Level.STORE: (
        "This release needs a new binary through the app stores; an over-the-air push cannot deliver it.",
        "Build with the native template that matches this Studio Pro version, raise the version or build "
        "number, and submit to the stores.",
        "To ship the rest over the air now, hold back the store-level changes listed below.",
    ),
}


def plan_for(level: Level) -> tuple[str, ...]:
    """The steps for a verdict level."""
    return PLAN_STEPS[level]
