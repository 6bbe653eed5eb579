"""The native half of one app snapshot: what decides whether a change needs a new store binary.

Read by :mod:`analyzer.load.native` from the widget packages (``widgets/*.mpk``), the JavaScript
actions' native dependency files, the Native Mobile Builder configuration (``nativemobile/.config``)
and, when the app keeps one, the Native Template folder. Everything is plain frozen data in a
canonical order (tuples sorted by their natural key, except where file order carries meaning), so two
reads of the same files compare equal with ``==`` and a diff can pair items by key.
"""

from __future__ import annotations

from dataclasses import dataclass

ConfigScalar = str | int | float | bool | None
"""A leaf of a JSON configuration value."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class NativeDependency:
    """One npm package with native code that a component needs in the binary.

    ``declared_by`` names the component: ``widget:<widget id>`` (or ``widget:<mpk name>`` when the
    package names no widget), ``jsaction:<module>.<Action>``, ``npm:<path of the package.json>`` or
    ``template`` / ``template:<file>`` for the Native Template. ``evidence`` says why it counts as
    native (``nativeDependencies`` for a declaration file; heuristic hints for npm package files).
    """

    name: str
    version: str
    declared_by: str
    source_path: str
    evidence: str = "nativeDependencies"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class WidgetInfo:
    """One widget defined by a widget package (one ``<widget>`` XML file)."""

    id: str
    name: str
    supported_platform: str
    """The ``supportedPlatform`` attribute: ``Native``, ``Web`` or ``All`` (``Web`` when absent)."""
    offline_capable: bool
    xml_path: str
    """Path of the widget XML inside the package."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class WidgetPackage:
    """A pluggable or custom widget package: ``widgets/<name>.mpk``."""

    path: str
    package_name: str
    """The ``clientModule`` name in ``package.xml``."""
    version: str
    widgets: tuple[WidgetInfo, ...]
    native_dependencies: tuple[NativeDependency, ...]
    sha256: str
    """Hash of the package file as stored."""
    content_sha256: str
    """Hash of the package's entries (names and contents, not zip timestamps or compression): equal
    when a rebuilt package differs from the previous one only in how it was zipped."""

    @property
    def is_native_code(self) -> bool:
        """True when some widget of the package declares native dependencies."""
        return bool(self.native_dependencies)


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class AssetRef:
    """A file a configuration points to (icon, splash screen, font, Firebase file) and its hash."""

    key: str
    path: str
    """Path relative to the app directory, with ``/`` separators (``.config`` writes ``\\``)."""
    sha256: str | None
    """``None`` when the referenced file is missing."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class NativePermission:
    """One permission entry of a builder configuration (Android ``uses-permission`` or iOS key)."""

    platform: str
    name: str
    title: str
    required: bool
    purpose: str | None
    """The iOS usage description text (``NS*UsageDescription``), when given."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class NativeConfig:
    """One configuration of ``nativemobile/.config`` (the Native Mobile Builder settings).

    Icons, splash screens and fonts are shared by all configurations of the file; they are repeated
    in each so that one configuration is complete on its own.
    """

    name: str
    """The configuration name (``Default`` unless the builder has several)."""
    path: str
    config_version: int | None
    app_name: str | None
    app_identifier: str | None
    build_number: str | None
    runtime_url: str | None
    bundle_name: str | None
    device_targets: tuple[tuple[str, bool], ...]
    orientation: tuple[tuple[str, bool], ...]
    hermes_enabled: bool | None
    permissions: tuple[NativePermission, ...]
    capabilities: tuple[tuple[str, ConfigScalar], ...]
    """Flattened ``capabilities`` object, e.g. ``("maps.enabled", True)``,
    ``("deepLink.android.webLinks[0].host", "")``, sorted by key."""
    capability_files: tuple[AssetRef, ...]
    """Files named by capability values (the Firebase service files), hashed."""
    app_center: tuple[tuple[str, ConfigScalar], ...]
    uses_app_center: bool | None
    fonts: tuple[AssetRef, ...]
    icons: tuple[AssetRef, ...]
    splash_screens: tuple[AssetRef, ...]
    extra: tuple[tuple[str, str], ...]
    """Any other key of the configuration (flattened, value as canonical JSON), so that a change
    nobody anticipated is still seen. Signing certificate paths are left out (machine-local)."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class TemplateRange:
    """One entry of the template's ``mendix_version.json``: Studio Pro versions → template versions."""

    studio_pro_pattern: str
    min: str
    max: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeTemplate:
    """A Native Template folder kept with the app (``resources/native_template/`` or given)."""

    root: str
    """Where the template was found: a folder of the app (``resources/native_template``) or a
    directory given on the command line."""
    version: str | None
    """Template version: ``.template_version`` without its ``v``, else ``package.json`` ``version``."""
    package_version: str | None
    """``version`` of the template's ``package.json`` as written."""
    mendix_version_ranges: tuple[TemplateRange, ...]
    """``mendix_version.json`` entries in FILE ORDER (the first matching key wins)."""
    dependencies: tuple[NativeDependency, ...]
    """``package.json`` ``dependencies`` (declared by ``template``)."""
    binary_native_dependencies: tuple[NativeDependency, ...]
    """What the built binary reports as its native dependencies (``.native_dependencies``,
    ``ios/native_dependencies.json``, ``android/.../raw/native_dependencies.json``)."""
    capabilities: tuple[tuple[str, ConfigScalar], ...]
    """``capabilities.android.json`` / ``capabilities.ios.json`` flattened as ``android.maps`` etc."""
    android_app_name: str | None
    android_permissions: tuple[str, ...]
    android_screen_orientations: tuple[str, ...]
    android_version_name: str | None
    android_version_code: str | None
    android_application_id: str | None
    android_runtime_url: str | None
    gradle_properties: tuple[tuple[str, str], ...]
    ios_info: tuple[tuple[str, str], ...]
    """Release-relevant ``Info.plist`` keys; list values as canonical JSON."""
    xcconfig: tuple[tuple[str, str], ...]
    """``ios/Config/config.xcconfig`` assignments."""
    icon_assets: tuple[tuple[str, str], ...]
    """(path, sha256) of launcher icons (Android ``mipmap-*``, iOS ``AppIcon.appiconset``)."""
    splash_assets: tuple[tuple[str, str], ...]
    """(path, sha256) of splash screen files (Android ``drawable*/splash*``, iOS
    ``SplashScreen.imageset``, ``LaunchScreen.storyboard``)."""
    patches: tuple[tuple[str, str], ...]
    """(path, sha256) of files under ``patches/`` and ``intermediary-patches/``."""
    patches_digest: str
    native_files: tuple[tuple[str, str], ...]
    """(path, sha256) of the hand-editable files of ``android/`` and ``ios/`` (build output, the
    JS bundle and its assets, and the developer-app flavour left out)."""
    native_files_digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeFacts:
    """Everything native about one snapshot. Empty (and equal to :data:`NO_NATIVE_FACTS`) for an
    app without widgets, native dependency files, builder configuration or template."""

    widgets: tuple[WidgetPackage, ...] = ()
    js_action_dependencies: tuple[NativeDependency, ...] = ()
    npm_dependencies: tuple[NativeDependency, ...] = ()
    config: tuple[NativeConfig, ...] = ()
    template: NativeTemplate | None = None
    problems: tuple[str, ...] = ()
    """Things that were read but look wrong (a missing icon file, an unparsable vendored
    ``package.json``); never a reason to stop, always worth showing."""

    def required_dependencies(self) -> tuple[NativeDependency, ...]:
        """Every native dependency the app's components declare (widgets, then JS actions)."""
        widget_deps = [dep for package in self.widgets for dep in package.native_dependencies]
        return tuple(sorted([*widget_deps, *self.js_action_dependencies]))


NO_NATIVE_FACTS = NativeFacts()


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class NativeSetting:
    """One flat, comparable fact of the native half: what the diff pairs by ``(kind, key)``.

    ``kind`` is ``dependency`` (a native module some component declares), ``npm-dependency`` (a vendored
    package that looks native), ``widget`` (a widget package), ``config`` (a Native Mobile Builder
    setting), ``template`` (a Native Template fact or file) or ``problem``. ``value`` is what is compared;
    ``detail`` says who declares it, for reports, and is compared too.
    """

    kind: str
    key: str
    value: str
    detail: str = ""
