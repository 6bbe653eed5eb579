"""Flatten the native facts of a snapshot into comparable settings (kind, key, value, detail).

The diff pairs settings by (kind, key), so each setting names one thing a store release depends on:
a native module and its version, a widget package, one Native Mobile Builder setting, one template
fact or file. The XML snapshot stores these settings, so an archived baseline keeps its native half.
"""

from __future__ import annotations

from collections import defaultdict

from analyzer.model.native import AssetRef, NativeDependency, NativeFacts, NativeSetting


def _assets(kind: str, prefix: str, refs: tuple[AssetRef, ...]) -> list[NativeSetting]:
    return [
        NativeSetting(kind=kind, key=f"{prefix}.{ref.key}", value=ref.sha256 or "(missing)", detail=ref.path)
        for ref in refs
    ]


def _dependencies(kind: str, deps: tuple[NativeDependency, ...]) -> list[NativeSetting]:
    versions: dict[str, set[str]] = defaultdict(set)
    declared: dict[str, set[str]] = defaultdict(set)
    for dep in deps:
        versions[dep.name].add(dep.version)
        declared[dep.name].add(dep.declared_by)
    return [
        NativeSetting(
            kind=kind, key=name, value=" | ".join(sorted(versions[name])), detail=", ".join(sorted(declared[name]))
        )
        for name in sorted(versions)
    ]


def native_settings(facts: NativeFacts) -> tuple[NativeSetting, ...]:
    """Every native fact as a setting, sorted by (kind, key)."""
    settings: list[NativeSetting] = []
    settings += _dependencies("dependency", facts.required_dependencies())
    settings += _dependencies("npm-dependency", facts.npm_dependencies)
    for package in facts.widgets:
        widget_ids = ", ".join(w.id for w in package.widgets) or package.package_name
        platforms = ", ".join(sorted({w.supported_platform for w in package.widgets}))
        settings.append(
            NativeSetting(
                kind="widget", key=package.path, value=f"{package.package_name} {package.version}",
                detail=f"{widget_ids} ({platforms or 'no widget XML'})",
            )
        )
        settings.append(NativeSetting(kind="widget-content", key=package.path, value=package.content_sha256))
    for config in facts.config:
        prefix = config.name
        scalars: dict[str, object] = {
            "appName": config.app_name,
            "appIdentifier": config.app_identifier,
            "buildNumber": config.build_number,
            "runtimeUrl": config.runtime_url,
            "bundleName": config.bundle_name,
            "hermesEnabled": config.hermes_enabled,
            "usesAppCenter": config.uses_app_center,
            "configVersion": config.config_version,
        }
        for key, value in scalars.items():
            if value is not None:
                settings.append(NativeSetting(kind="config", key=f"{prefix}.{key}", value=_text(value)))
        for name, flag in config.device_targets:
            settings.append(NativeSetting(kind="config", key=f"{prefix}.deviceTarget.{name}", value=_text(flag)))
        for name, flag in config.orientation:
            settings.append(NativeSetting(kind="config", key=f"{prefix}.orientation.{name}", value=_text(flag)))
        for permission in config.permissions:
            settings.append(
                NativeSetting(
                    kind="config",
                    key=f"{prefix}.permission.{permission.platform}.{permission.name}",
                    value=f"required={_text(permission.required)}",
                    detail=" | ".join(p for p in (permission.title, permission.purpose or "") if p),
                )
            )
        for key, scalar in config.capabilities:
            settings.append(NativeSetting(kind="config", key=f"{prefix}.capability.{key}", value=_text(scalar)))
        for key, scalar in config.app_center:
            settings.append(NativeSetting(kind="config", key=f"{prefix}.appCenter.{key}", value=_text(scalar)))
        for key, text in config.extra:
            settings.append(NativeSetting(kind="config", key=f"{prefix}.{key}", value=text))
        settings += _assets("config", f"{prefix}.capabilityFile", config.capability_files)
        settings += _assets("config", f"{prefix}.font", config.fonts)
        settings += _assets("config", f"{prefix}.icon", config.icons)
        settings += _assets("config", f"{prefix}.splash", config.splash_screens)
    template = facts.template
    if template is not None:
        def add(key: str, value: object, detail: str = "") -> None:
            if value is not None:
                settings.append(NativeSetting(kind="template", key=key, value=_text(value), detail=detail))

        add("version", template.version, template.root)
        add("packageVersion", template.package_version)
        for position, entry in enumerate(template.mendix_version_ranges):
            add(f"mendixVersion.{position}", f"{entry.studio_pro_pattern} -> {entry.min} .. {entry.max}")
        for dep in template.dependencies:
            add(f"dependency.{dep.name}", dep.version)
        for dep in template.binary_native_dependencies:
            add(f"binaryDependency.{dep.name}", dep.version)
        for key, scalar in template.capabilities:
            add(f"capability.{key}", scalar)
        add("android.appName", template.android_app_name)
        for android_permission in template.android_permissions:
            add(f"android.permission.{android_permission}", True)
        for orientation in template.android_screen_orientations:
            add(f"android.screenOrientation.{orientation}", True)
        add("android.versionName", template.android_version_name)
        add("android.versionCode", template.android_version_code)
        add("android.applicationId", template.android_application_id)
        add("android.runtimeUrl", template.android_runtime_url)
        for key, text in template.gradle_properties:
            add(f"gradle.{key}", text)
        for key, text in template.ios_info:
            add(f"ios.{key}", text)
        for key, text in template.xcconfig:
            add(f"xcconfig.{key}", text)
        for path, digest in template.icon_assets:
            add(f"icon.{path}", digest)
        for path, digest in template.splash_assets:
            add(f"splash.{path}", digest)
        for path, digest in template.patches:
            add(f"patch.{path}", digest)
        for path, digest in template.native_files:
            add(f"file.{path}", digest)
    for problem in facts.problems:
        settings.append(NativeSetting(kind="problem", key=problem, value="reported"))
    unique = {(s.kind, s.key): s for s in settings}
    return tuple(sorted(unique.values()))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
