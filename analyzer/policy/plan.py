"""The push plan (DESIGN.md §6): what to do next for the channel the released binary has."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from analyzer.model.delivery import Channel, Delivery, PushPlan
from analyzer.model.findings import Finding
from analyzer.model.levels import Level
from analyzer.model.native import NativeSetting

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

SWITCH_ON_OTA = (
    "Switch on over-the-air updates (native navigation profile → 'Enable over-the-air updates', Studio Pro "
    "9.7 or newer), then build and release that binary through the stores once; from then on a runtime "
    "deployment reaches devices over the air."
)


def plan_for(level: Level) -> tuple[str, ...]:
    """The generic steps for a verdict level."""
    return PLAN_STEPS[level]


def _setting(settings: Sequence[NativeSetting], kind: str, *keys: str) -> str | None:
    for key in keys:
        for setting in settings:
            if setting.kind == kind and (setting.key == key or setting.key.endswith("." + key)):
                return setting.value
    return None


def build_plan(
    level: Level,
    findings: Sequence[Finding],
    delivery: Delivery,
    base_native: Sequence[NativeSetting],
    mode: str = "release",
) -> PushPlan:
    """The plan for this verdict and channel; pure, so every reporter shows the same plan."""
    active = [f for f in findings if not f.waived]
    if mode == "initial":
        return PushPlan(
            mechanism="store",
            headline="Initial release: the first binary goes through the stores.",
            steps=(
                "Build the binary from the native template for this Studio Pro version and submit it.",
                "Archive this snapshot as the baseline: mxota snapshot SOURCE -o app-VERSION.xml.",
                *((SWITCH_ON_OTA,) if delivery.channel is not Channel.MENDIX_OTA else ()),
            ),
        )
    if mode == "rollback" and level is not Level.STORE and delivery.channel is Channel.CODEPUSH:
        project = _setting(base_native, "config", "appName") or "<project name>"
        return PushPlan(
            mechanism="codepush",
            headline="Rollback with App Center CodePush.",
            steps=(
                "Going back is a release too: the findings below are what devices meet on the older version.",
                "rollback-update creates a new release from the earlier label; pick the label of the good release.",
            ),
            command=shlex.join(
                ["native-builder", "release", "rollback-update", "--project-name", project, "--label", "<label>"]
            ),
        )
    held_back = tuple(
        sorted({f"{f.change.qualified_name} [{f.rule}]" for f in active if f.level is Level.STORE or f.unclassified})
    )
    if delivery.channel is Channel.NONE and any("not a native app" in e for e in delivery.evidence):
        return PushPlan(
            mechanism="runtime",
            headline="Not a native app: deploy the runtime as usual.",
            steps=plan_for(level),
        )
    if level is Level.STORE:
        return PushPlan(
            mechanism="store",
            headline="Store release: this release needs a new binary.",
            steps=plan_for(level),
            held_back=held_back,
        )
    if delivery.channel is Channel.NONE:
        return PushPlan(
            mechanism="none",
            headline=(
                "The released binary has no over-the-air channel: even these over-the-air-eligible changes "
                "need a store release until OTA is switched on."
            ),
            steps=(*plan_for(level), SWITCH_ON_OTA),
        )
    if level is Level.NONE:
        return PushPlan(mechanism=delivery.channel.value, headline="Nothing to release.", steps=plan_for(level))
    if delivery.channel is Channel.MENDIX_OTA:
        redeploy = sum(1 for f in active if f.level in (Level.OTA_REDEPLOY, Level.DATA_RISK))
        steps = [
            "Deploy the Mendix runtime: with Mendix OTA the deployment is the push; devices download the new "
            "bundle and use it from their next cold start.",
        ]
        if redeploy:
            steps.append(
                f"Until users restart, old bundles run against the new runtime: {redeploy} server-side change(s) "
                "below must stay compatible with them."
            )
        if level is Level.DATA_RISK:
            steps.insert(0, PLAN_STEPS[Level.DATA_RISK][0])
            steps.append("Mendix OTA has no staged rollout: mitigate before deploying.")
        return PushPlan(mechanism="mendix-ota", headline="Push over the air with Mendix OTA.", steps=tuple(steps))
    if delivery.channel is Channel.CODEPUSH:
        return _codepush(level, base_native)
    return PushPlan(
        mechanism="unknown",
        headline="The over-the-air channel of the released binary is unknown; the verdict is about the changes.",
        steps=(*plan_for(level), "State the channel in .mxota.toml (ota_channel) to get a push plan for it."),
    )


def _codepush(level: Level, base_native: Sequence[NativeSetting]) -> PushPlan:
    project = _setting(base_native, "config", "appName") or "<project name>"
    version = (
        _setting(base_native, "template", "android.versionName", "ios.CFBundleShortVersionString")
        or "<store version of the released binary>"
    )
    build = _setting(base_native, "config", "buildNumber") or _setting(base_native, "template", "android.versionCode")
    mandatory = level >= Level.OTA_REDEPLOY
    rollout = 10 if level is Level.DATA_RISK else 100
    command = [
        "native-builder", "release", "push-update", "--project-name", project, "--target-version", version,
        "--build-number", build or "<build number of the released binary>",
        "--rollout-percentage", str(rollout), "--mandatory", "true" if mandatory else "false",
    ]
    steps = [
        "Redeploy the Mendix runtime first." if level >= Level.OTA_REDEPLOY else "No runtime redeploy is needed.",
        f"--target-version {version}: the store version of the released binary (CodePush matches it).",
        f"--mandatory {'true' if mandatory else 'false'}: "
        + (
            "old bundles cannot be trusted to work against the redeployed runtime."
            if mandatory
            else "the change is bundle-only; users may take it at their pace."
        ),
        f"--rollout-percentage {rollout}: "
        + (
            "data risk: start small, watch synchronization errors, then patch the rollout up."
            if rollout < 100
            else "no data risk: roll out to everyone."
        ),
    ]
    return PushPlan(
        mechanism="codepush",
        headline="Push over the air with App Center CodePush (Native Builder).",
        steps=tuple(steps),
        command=shlex.join(command),
    )
