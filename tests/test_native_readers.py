"""Readers of the native half of an app: widget packages, JS-action and npm dependencies,
``nativemobile/.config`` and the Native Template folder (``analyzer.load.native``)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from analyzer.errors import InputError
from analyzer.load.files import DirectoryTree
from analyzer.load.limits import DEFAULT_LIMITS, Limits
from analyzer.load.native import native_package_hints, read_native, read_widget_package
from analyzer.model.native import (
    AssetRef,
    NativeDependency,
    NativeFacts,
    NativePermission,
    TemplateRange,
    WidgetInfo,
    WidgetPackage,
)
from analyzer.model.versions import template_range_for, version_matches

# --------------------------------------------------------------------------------------------------
# builders of small synthetic inputs

PACKAGE_XML = """<?xml version="1.0" encoding="utf-8" ?>
<package xmlns="http://www.mendix.com/package/1.0/">
    <clientModule name="{name}" version="{version}" xmlns="http://www.mendix.com/clientModule/1.0/">
        <widgetFiles>
            <widgetFile path="{name}.xml" />
        </widgetFiles>
        <files><file path="com/example/{lower}" /></files>
    </clientModule>
</package>
"""

WIDGET_XML = """<?xml version="1.0" encoding="utf-8"?>
<widget id="com.example.{lower}.{name}" supportedPlatform="Native" offlineCapable="true"
        pluginWidget="true" xmlns="http://www.mendix.com/widget/1.0/">
    <name>{caption}</name>
    <description>Test widget.</description>
    <properties/>
</widget>
"""


def make_mpk(
    name: str = "Maps",
    version: str = "5.2.0",
    native: dict[str, str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("package.xml", PACKAGE_XML.format(name=name, version=version, lower=name.lower()))
        archive.writestr(
            f"{name}.xml", WIDGET_XML.format(name=name, lower=name.lower(), caption=f"{name} caption")
        )
        if native is not None:
            archive.writestr(f"{name}.json", json.dumps({"nativeDependencies": native}))
        archive.writestr("dependencies.json", json.dumps([{"left-pad": {"version": "1.0.0"}}]))
        archive.writestr(f"com/example/{name.lower()}/{name}.ios.js", "export {}")
        for member, body in (extra or {}).items():
            archive.writestr(member, body)
    return buffer.getvalue()


def write(root: Path, rel: str, data: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


CONFIG: dict[str, object] = {
    "id": "2f285e60",
    "projectName": "App",
    "configVersion": 5,
    "prepared": True,
    "fonts": {},
    "configurations": {
        "Default": {
            "appName": "My App",
            "runtimeUrl": "https://app.example.com",
            "deviceTarget": {"phone": True, "tablet": False},
            "orientation": {"portrait": True, "landscape": False},
            "appIdentifier": "com.example.app",
            "bundleName": {"main": "MyApp", "dev": "MyAppDev"},
            "buildNumber": "4",
            "hermesEnabled": True,
            "appcenter": {"iosAppName": "ios-app"},
            "permissions": [
                {
                    "title": "Camera",
                    "name": "android.permission.CAMERA",
                    "platform": "android",
                    "required": False,
                },
                {
                    "title": "Camera Usage",
                    "name": "NSCameraUsageDescription",
                    "purpose": "Scan codes",
                    "platform": "ios",
                    "required": True,
                },
            ],
            "capabilities": {
                "deepLink": {
                    "value": "",
                    "enabled": False,
                    "android": {"webLinks": [{"host": "", "path": ""}]},
                },
                "maps": {"value": "KEY", "enabled": True},
                "firebaseAndroid": {
                    "value": "nativemobile\\firebase\\google-services-1.json",
                    "enabled": True,
                },
            },
            "iOSCertificates": {"provisioningFile": "C:\\certs\\a.mobileprovision", "certificate": ""},
            "customSetting": {"x": 1},
        }
    },
    "usesAppCenter": False,
    "splashScreens": {
        "splash@1x": {"name": "splash@1x", "path": "nativemobile\\assets\\splashScreens\\splash@1x.png"}
    },
    "icons": {
        "mipmap-mdpi/ic_launcher": {"path": "nativemobile\\assets\\icons\\mipmap-mdpi-ic_launcher.png"},
        "app@2x": {"path": "nativemobile\\assets\\icons\\app@2x.png"},
    },
}

SHA_ICON = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"  # sha256(b"foo")
SHA_SPLASH = "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"  # sha256(b"bar")


def build_app(root: Path) -> Path:
    """A small native app directory with one of everything."""
    write(
        root,
        "widgets/com.example.widget.Maps.mpk",
        make_mpk("Maps", "5.2.0", {"react-native-maps": "1.20.1"}),
    )
    write(root, "widgets/com.example.widget.Image.mpk", make_mpk("Image", "3.1.0", None))
    write(root, "widgets/nested/Ignored.mpk", b"not even a zip")  # Studio Pro loads only widgets/*.mpk
    actions = "javascriptsource/nativemobileresources/actions"
    write(root, f"{actions}/TakePicture.js", "export async function TakePicture() {}")
    write(
        root,
        f"{actions}/TakePicture.json",
        json.dumps(
            {"nativeDependencies": {"react-native-image-picker": "7.2.3", "react-native-localize": "3.7.0"}}
        ),
    )
    write(root, f"{actions}/NoDeps.json", json.dumps({"something": "else"}))
    write(root, f"{actions}/dependencies.json", json.dumps([{"mime": {"version": "3.0.0"}}]))
    write(root, f"{actions}/dependencies.txt", "licence text")
    write(
        root,
        f"{actions}/package.json",
        json.dumps({"dependencies": {"react-native-share": "11.1.0", "mime": "3"}}),
    )
    write(
        root,
        f"{actions}/node_modules/react-native-image-picker/package.json",
        json.dumps(
            {
                "name": "react-native-image-picker",
                "version": "7.2.3",
                "files": ["android/", "!android/build", "ios/", "*.podspec"],
                "peerDependencies": {"react-native": "*"},
            }
        ),
    )
    write(root, f"{actions}/node_modules/mime/package.json", json.dumps({"name": "mime", "version": "3.0.0"}))
    write(
        root,
        f"{actions}/node_modules/react-native-image-picker/lib/module/package.json",
        json.dumps({"type": "module"}),
    )
    write(
        root,
        f"{actions}/node_modules/@scope/native-thing/package.json",
        json.dumps({"name": "@scope/native-thing", "version": "1.0.0", "codegenConfig": {"name": "x"}}),
    )
    write(root, "nativemobile/.config", json.dumps(CONFIG, indent=2))
    write(root, "nativemobile/assets/icons/mipmap-mdpi-ic_launcher.png", b"foo")
    write(root, "nativemobile/assets/splashScreens/splash@1x.png", b"bar")
    write(root, "nativemobile/firebase/google-services-1.json", b"{}")
    build_template(root / "resources/native_template")
    return root


MENDIX_VERSION = """{
  ">=10.22.0": {"max": "*", "min": "14.0.0"},
  ">=10.21.0": {"max": "13.*.*", "min": "13.0.0"},
  "8.8.*": {"max": "3.2.*", "min": "3.2.0"},
  ">=8.7.0": {"max": "3.1.*", "min": "2.1.0"},
  "<8.5.0": {"max": "2.0.*", "min": "1.0.0"}
}"""

STRINGS_XML = '<resources>\n    <string name="app_name">My App</string>\n</resources>\n'

MANIFEST_XML = """<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    xmlns:tools="http://schemas.android.com/tools" package="com.mendix.nativetemplate">
    <uses-permission android:name="android.permission.INTERNET"/>
    <uses-permission android:name="android.permission.CAMERA"/>
    <uses-permission android:name="android.permission.QUERY_ALL_PACKAGES" tools:node="remove"/>
    <application android:label="@string/app_name">
        <activity android:name=".MainActivity" android:screenOrientation="userPortrait"/>
    </application>
</manifest>
"""

BUILD_GRADLE = """android {
    namespace "com.mendix.nativetemplate"
    defaultConfig {
        applicationId "com.example.app"
        minSdkVersion rootProject.ext.minSdkVersion
        versionCode 20
        versionName "0.5.0"
    }
    productFlavors {
        dev { applicationIdSuffix ".developerapp"; versionNameSuffix "-developerApp" }
    }
}
"""

INFO_PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
  <dict>
    <key>CFBundleDisplayName</key><string>$(BUNDLE_DISPLAY_NAME)</string>
    <key>CFBundleShortVersionString</key><string>0.5.0</string>
    <key>CFBundleVersion</key><string>20</string>
    <key>NSCameraUsageDescription</key><string>Scan codes</string>
    <key>UIAppFonts</key><array><string>a.ttf</string></array>
    <key>CFBundleDevelopmentRegion</key><string>en</string>
  </dict>
</plist>
"""

XCCONFIG = """BUNDLE_DISPLAY_NAME = My App
BUNDLE_IDENTIFIER = com.example.app
// a comment
RUNTIME_URL = https:\\/\\/app.example.com
"""


def build_template(root: Path) -> Path:
    write(root, ".template_version", "v14.1.6\n")
    write(
        root,
        "package.json",
        json.dumps(
            {
                "name": "native-template",
                "version": "14.1.6",
                "dependencies": {"react-native": "0.77.3", "react-native-image-picker": "7.2.3"},
            }
        ),
    )
    write(root, "mendix_version.json", MENDIX_VERSION)
    write(root, ".native_dependencies", json.dumps({"react-native-image-picker": "7.2.3"}))
    write(root, "capabilities.android.json", json.dumps({"maps": False, "pushNotifications": True}))
    write(root, "patches/react-native+0.77.3.patch", "diff --git a b\n")
    write(root, "android/app/src/main/res/values/strings.xml", STRINGS_XML)
    write(root, "android/app/src/main/AndroidManifest.xml", MANIFEST_XML)
    write(root, "android/app/build.gradle", BUILD_GRADLE)
    write(root, "android/gradle.properties", "# comment\nhermesEnabled=true\nnewArchEnabled = false\n")
    write(root, "android/app/src/main/res/raw/runtime_url", "https://app.example.com")
    write(root, "android/app/src/main/res/mipmap-mdpi/ic_launcher.png", b"foo")
    write(root, "android/app/src/main/res/drawable-hdpi/splash.png", b"bar")
    write(
        root, "android/app/src/main/res/drawable-mdpi/img_bundle_asset.png", b"bundle"
    )  # from the JS bundle
    write(root, "android/app/src/main/assets/index.android.bundle", "bundle")
    write(root, "android/app/src/dev/res/values/strings.xml", STRINGS_XML)  # developer app: not released
    write(root, "android/app/build/outputs/app.apk", b"apk")
    write(root, "ios/nativeTemplate/Info.plist", INFO_PLIST)
    write(root, "ios/Config/config.xcconfig", XCCONFIG)
    write(root, "ios/nativeTemplate/Images.xcassets/AppIcon.appiconset/app@2x.png", b"foo")
    write(root, "ios/Bundle/index.ios.bundle", "bundle")
    write(root, "ios/Pods/Manifest.lock", "pods")
    return root


# --------------------------------------------------------------------------------------------------
# synthetic app: exact values


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return build_app(tmp_path / "app")


def test_reads_widget_packages(app: Path) -> None:
    facts = read_native(DirectoryTree(app), DEFAULT_LIMITS)
    assert [package.path for package in facts.widgets] == [
        "widgets/com.example.widget.Image.mpk",
        "widgets/com.example.widget.Maps.mpk",
    ]
    image, maps = facts.widgets
    assert (maps.package_name, maps.version) == ("Maps", "5.2.0")
    assert maps.widgets == (
        WidgetInfo(
            id="com.example.maps.Maps",
            name="Maps caption",
            supported_platform="Native",
            offline_capable=True,
            xml_path="Maps.xml",
        ),
    )
    assert maps.native_dependencies == (
        NativeDependency(
            name="react-native-maps",
            version="1.20.1",
            declared_by="widget:com.example.maps.Maps",
            source_path="widgets/com.example.widget.Maps.mpk!Maps.json",
        ),
    )
    assert maps.is_native_code and not image.is_native_code
    assert image.native_dependencies == ()
    assert len(maps.sha256) == 64 and len(maps.content_sha256) == 64


def test_a_cache_keeps_each_widget_package_read(app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package is parsed once per cache: a later run takes it from its record, the same package; a
    damaged record is parsed again, and the key names the bytes, the path, the limits and the code."""
    import analyzer.load.native as native_module
    from analyzer.cache import DiskUnitStore
    from analyzer.load.memo import ReadMemo

    plain = read_native(DirectoryTree(app), DEFAULT_LIMITS).widgets
    store = DiskUnitStore(tmp_path / "cache")
    assert read_native(DirectoryTree(app), DEFAULT_LIMITS, memo=ReadMemo(store=store)).widgets == plain
    parsed: list[str] = []
    parse = native_module.read_widget_package

    def counted(path: str, data: bytes, limits: Limits, location: str | None = None) -> WidgetPackage:
        parsed.append(path)
        return parse(path, data, limits, location)

    monkeypatch.setattr(native_module, "read_widget_package", counted)
    again = read_native(DirectoryTree(app), DEFAULT_LIMITS, memo=ReadMemo(store=DiskUnitStore(tmp_path / "cache")))
    assert again.widgets == plain and parsed == []
    lower = DEFAULT_LIMITS.with_overrides({"max_archive_entries": "50"})
    read_native(DirectoryTree(app), lower, memo=ReadMemo(store=DiskUnitStore(tmp_path / "cache")))
    assert len(parsed) == len(plain)  # other limits: parsed under them

    maps = plain[1]
    key = (maps.path, f"sha256:{maps.sha256}")
    assert len({
        native_module.widget_key(key, DEFAULT_LIMITS),
        native_module.widget_key((maps.path, "sha256:" + "0" * 64), DEFAULT_LIMITS),
        native_module.widget_key(("widgets/other.mpk", key[1]), DEFAULT_LIMITS),
        native_module.widget_key(key, lower),
    }) == 4
    record = native_module.encode_widget_package(maps)
    assert native_module.decode_widget_package(record, maps.path) == maps
    with pytest.raises(ValueError):
        native_module.decode_widget_package(record, plain[0].path)  # another path's record
    for position in range(len(record)):  # every single-byte change, and every cut, is refused
        damaged = bytearray(record)
        damaged[position] ^= 0x20
        with pytest.raises(ValueError):
            native_module.decode_widget_package(bytes(damaged), maps.path)
        with pytest.raises(ValueError):
            native_module.decode_widget_package(record[:position], maps.path)
    monkeypatch.setattr(native_module, "loader_fingerprint", lambda: "another reader")
    parsed.clear()
    read_native(DirectoryTree(app), DEFAULT_LIMITS, memo=ReadMemo(store=DiskUnitStore(tmp_path / "cache")))
    assert len(parsed) == len(plain)  # other code: parsed again


def test_content_hash_ignores_zip_timestamps() -> None:
    def build(when: tuple[int, int, int, int, int, int]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, body in (
                ("package.xml", PACKAGE_XML.format(name="A", version="1", lower="a")),
                ("A.xml", WIDGET_XML.format(name="A", lower="a", caption="A")),
            ):
                archive.writestr(zipfile.ZipInfo(name, date_time=when), body)
        return buffer.getvalue()

    first = read_widget_package("widgets/A.mpk", build((2025, 1, 1, 0, 0, 0)), DEFAULT_LIMITS)
    second = read_widget_package("widgets/A.mpk", build((2026, 4, 22, 11, 59, 0)), DEFAULT_LIMITS)
    assert first.sha256 != second.sha256
    assert first.content_sha256 == second.content_sha256


def test_reads_js_action_dependencies(app: Path) -> None:
    facts = read_native(DirectoryTree(app), DEFAULT_LIMITS)
    assert facts.js_action_dependencies == (
        NativeDependency(
            name="react-native-image-picker",
            version="7.2.3",
            declared_by="jsaction:nativemobileresources.TakePicture",
            source_path="javascriptsource/nativemobileresources/actions/TakePicture.json",
        ),
        NativeDependency(
            name="react-native-localize",
            version="3.7.0",
            declared_by="jsaction:nativemobileresources.TakePicture",
            source_path="javascriptsource/nativemobileresources/actions/TakePicture.json",
        ),
    )


def test_reads_native_looking_npm_packages(app: Path) -> None:
    facts = read_native(DirectoryTree(app), DEFAULT_LIMITS)
    actions = "javascriptsource/nativemobileresources/actions"
    found = {(dep.name, dep.version, dep.declared_by, dep.evidence) for dep in facts.npm_dependencies}
    assert found == {
        (
            "@scope/native-thing",
            "1.0.0",
            f"npm:{actions}/node_modules/@scope/native-thing/package.json",
            "vendored package.json: codegenConfig",
        ),
        (
            "react-native-image-picker",
            "7.2.3",
            f"npm:{actions}/node_modules/react-native-image-picker/package.json",
            "vendored package.json: files:android, files:ios, files:podspec, peer:react-native, name",
        ),
        ("react-native-share", "11.1.0", f"npm:{actions}/package.json", "module package.json; name"),
    }


def test_native_package_hints() -> None:
    assert native_package_hints({"name": "invariant", "files": ["browser.js"]}) == ()
    assert native_package_hints({"name": "react-native-geocoder"}) == ("name",)
    assert native_package_hints({"name": "x", "files": ["!android/build", "lib/"]}) == ()
    assert native_package_hints({"name": "x", "rnpm": {}, "peerDependencies": {"react-native": "*"}}) == (
        "rnpm",
        "peer:react-native",
    )


def test_reads_native_config(app: Path) -> None:
    facts = read_native(DirectoryTree(app), DEFAULT_LIMITS)
    assert len(facts.config) == 1
    config = facts.config[0]
    assert config.name == "Default"
    assert config.config_version == 5
    assert (config.app_name, config.app_identifier, config.build_number) == ("My App", "com.example.app", "4")
    assert config.runtime_url == "https://app.example.com"
    assert config.bundle_name == "MyApp"
    assert config.device_targets == (("phone", True), ("tablet", False))
    assert config.orientation == (("landscape", False), ("portrait", True))
    assert config.hermes_enabled is True
    assert config.uses_app_center is False
    assert config.permissions == (
        NativePermission(
            platform="android", name="android.permission.CAMERA", title="Camera", required=False, purpose=None
        ),
        NativePermission(
            platform="ios",
            name="NSCameraUsageDescription",
            title="Camera Usage",
            required=True,
            purpose="Scan codes",
        ),
    )
    assert config.capabilities == (
        ("deepLink.android.webLinks[0].host", ""),
        ("deepLink.android.webLinks[0].path", ""),
        ("deepLink.enabled", False),
        ("deepLink.value", ""),
        ("firebaseAndroid.enabled", True),
        ("firebaseAndroid.value", "nativemobile\\firebase\\google-services-1.json"),
        ("maps.enabled", True),
        ("maps.value", "KEY"),
    )
    assert config.capability_files == (
        AssetRef(
            key="firebaseAndroid.value",
            path="nativemobile/firebase/google-services-1.json",
            sha256="44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ),
    )
    assert config.app_center == (("iosAppName", "ios-app"),)
    assert config.icons == (
        AssetRef(key="app@2x", path="nativemobile/assets/icons/app@2x.png", sha256=None),
        AssetRef(
            key="mipmap-mdpi/ic_launcher",
            path="nativemobile/assets/icons/mipmap-mdpi-ic_launcher.png",
            sha256=SHA_ICON,
        ),
    )
    assert config.splash_screens == (
        AssetRef(key="splash@1x", path="nativemobile/assets/splashScreens/splash@1x.png", sha256=SHA_SPLASH),
    )
    assert config.fonts == ()
    assert config.extra == (("customSetting.x", "1"),)  # certificates are left out
    assert facts.problems == (
        "nativemobile/.config: icon 'app@2x' points to nativemobile/assets/icons/app@2x.png, "
        "which is missing",
    )


def test_reads_native_template(app: Path) -> None:
    template = read_native(DirectoryTree(app), DEFAULT_LIMITS).template
    assert template is not None
    assert template.root == "resources/native_template"
    assert (template.version, template.package_version) == ("14.1.6", "14.1.6")
    assert [r.studio_pro_pattern for r in template.mendix_version_ranges] == [
        ">=10.22.0",
        ">=10.21.0",
        "8.8.*",
        ">=8.7.0",
        "<8.5.0",
    ]
    assert [(d.name, d.version, d.declared_by) for d in template.dependencies] == [
        ("react-native", "0.77.3", "template"),
        ("react-native-image-picker", "7.2.3", "template"),
    ]
    assert [(d.name, d.declared_by) for d in template.binary_native_dependencies] == [
        ("react-native-image-picker", "template:.native_dependencies")
    ]
    assert template.capabilities == (("android.maps", False), ("android.pushNotifications", True))
    assert template.android_app_name == "My App"
    assert template.android_permissions == ("android.permission.CAMERA", "android.permission.INTERNET")
    assert template.android_screen_orientations == ("userPortrait",)
    assert (template.android_version_name, template.android_version_code) == ("0.5.0", "20")
    assert template.android_application_id == "com.example.app"
    assert template.android_runtime_url == "https://app.example.com"
    assert template.gradle_properties == (("hermesEnabled", "true"), ("newArchEnabled", "false"))
    assert template.ios_info == (
        ("CFBundleDisplayName", "$(BUNDLE_DISPLAY_NAME)"),
        ("CFBundleShortVersionString", "0.5.0"),
        ("CFBundleVersion", "20"),
        ("NSCameraUsageDescription", "Scan codes"),
        ("UIAppFonts", '["a.ttf"]'),
    )
    assert template.xcconfig == (
        ("BUNDLE_DISPLAY_NAME", "My App"),
        ("BUNDLE_IDENTIFIER", "com.example.app"),
        ("RUNTIME_URL", "https://app.example.com"),
    )
    assert template.icon_assets == (
        ("android/app/src/main/res/mipmap-mdpi/ic_launcher.png", SHA_ICON),
        ("ios/nativeTemplate/Images.xcassets/AppIcon.appiconset/app@2x.png", SHA_ICON),
    )
    assert template.splash_assets == (("android/app/src/main/res/drawable-hdpi/splash.png", SHA_SPLASH),)
    assert [path for path, _ in template.patches] == ["patches/react-native+0.77.3.patch"]
    assert [path for path, _ in template.native_files] == [
        "android/app/build.gradle",
        "android/app/src/main/AndroidManifest.xml",
        "android/app/src/main/res/drawable-hdpi/splash.png",
        "android/app/src/main/res/mipmap-mdpi/ic_launcher.png",
        "android/app/src/main/res/raw/runtime_url",
        "android/app/src/main/res/values/strings.xml",
        "android/gradle.properties",
        "ios/Config/config.xcconfig",
        "ios/nativeTemplate/Images.xcassets/AppIcon.appiconset/app@2x.png",
        "ios/nativeTemplate/Info.plist",
    ]


def test_hand_edit_changes_the_native_digest_but_a_bundle_asset_does_not(tmp_path: Path) -> None:
    app = build_app(tmp_path / "app")
    before = read_native(DirectoryTree(app), DEFAULT_LIMITS).template
    write(
        app, "resources/native_template/android/app/src/main/res/drawable-mdpi/img_bundle_asset.png", b"new"
    )
    write(app, "resources/native_template/ios/Bundle/assets/img.png", b"new")
    same = read_native(DirectoryTree(app), DEFAULT_LIMITS).template
    write(app, "resources/native_template/ios/AppDelegate.m", "// hand edit")
    after = read_native(DirectoryTree(app), DEFAULT_LIMITS).template
    assert before is not None and same is not None and after is not None
    assert same.native_files_digest == before.native_files_digest
    assert after.native_files_digest != before.native_files_digest


def test_template_dir_on_disk(tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app, "App.mpr", b"")
    outside = build_template(tmp_path / "elsewhere" / "template")
    facts = read_native(DirectoryTree(app), DEFAULT_LIMITS, template_dir=str(outside))
    assert facts.template is not None
    assert facts.template.version == "14.1.6"
    assert facts.template.root == str(outside)
    with pytest.raises(InputError, match="native template folder not found"):
        read_native(DirectoryTree(app), DEFAULT_LIMITS, template_dir=str(tmp_path / "nowhere"))


def test_two_reads_compare_equal(app: Path) -> None:
    assert read_native(DirectoryTree(app), DEFAULT_LIMITS) == read_native(DirectoryTree(app), DEFAULT_LIMITS)


def test_app_without_native_files_gives_empty_facts(tmp_path: Path) -> None:
    write(tmp_path, "App.mpr", b"")
    write(tmp_path, "theme/web/main.scss", "")
    write(tmp_path, "javascriptsource/mod/actions/Do.js", "export {}")
    assert read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS) == NativeFacts()


# --------------------------------------------------------------------------------------------------
# mendix_version.json lookup


RANGES = tuple(
    TemplateRange(studio_pro_pattern=pattern, min=low, max=high)
    for pattern, low, high in (
        (">=11.11.0", "19.1.0", "19.*.*"),
        (">=11.10.0", "19.0.0", "19.0.*"),
        (">=10.24.0", "14.1.3", "14.*.*"),
        (">=8.9.0", "4.0.0", "4.*.*"),
        ("8.8.*", "3.2.0", "3.2.*"),
        (">=8.7.0", "2.1.0", "3.1.*"),
        (">=8.6.3", "3.2.0", "3.2.*"),
        ("<8.5.0", "1.0.0", "2.0.*"),
    )
)


@pytest.mark.parametrize(
    ("studio_pro", "expected"),
    [
        ("11.11.2", ("19.1.0", "19.*.*")),
        ("11.10.0-rc.5", ("19.0.0", "19.0.*")),  # pre-release tags are ignored (coerced)
        ("10.24.13.86719", ("14.1.3", "14.*.*")),  # the build number is ignored
        ("8.8.1", ("3.2.0", "3.2.*")),  # "8.8.*" comes before ">=8.7.0" in the file
        ("8.7.2", ("2.1.0", "3.1.*")),
        ("8.6.4", ("3.2.0", "3.2.*")),
        ("8.4.0", ("1.0.0", "2.0.*")),
        ("8.5.1", None),
    ],
)
def test_template_range_for_takes_the_first_match_in_file_order(
    studio_pro: str, expected: tuple[str, str] | None
) -> None:
    assert template_range_for(studio_pro, RANGES) == expected


@pytest.mark.parametrize(
    ("version", "pattern", "expected"),
    [
        ("14.1.6", "*", True),
        ("14.1.6", "14.*.*", True),
        ("15.0.0", "14.*.*", False),
        ("17.0.3", "17.0.*", True),
        ("17.1.0", "17.0.*", False),
        ("14.1.2", "14.1.2", True),
        ("1.2.9", "^1.2", True),
        ("2.0.0", "^1.2", False),
        ("0.2.5", "^0.2.3", True),
        ("0.3.0", "^0.2.3", False),
        ("1.2.9", "~1.2.3", True),
        ("1.3.0", "~1.2.3", False),
        ("1.4.9", "1.2 - 1.4", True),
        ("1.5.0", "1.2 - 1.4", False),
        ("3.0.0", "<2 || >=3", True),
        ("2.5.0", "<2 || >=3", False),
        ("10.22.0", ">= 10.22.0", True),
    ],
)
def test_version_matches(version: str, pattern: str, expected: bool) -> None:
    assert version_matches(version, pattern) is expected


# --------------------------------------------------------------------------------------------------
# hostile and broken inputs


def test_corrupt_widget_package_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "widgets/Broken.mpk", b"PK\x03\x04 this is not really a zip")
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert "widgets/Broken.mpk" in caught.value.location
    assert "not a readable zip archive" in caught.value.problem


def test_widget_package_with_parent_path_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "widgets/Evil.mpk", make_mpk("Evil", extra={"../../escape.js": b"x"}))
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert "widgets/Evil.mpk" in caught.value.location
    assert "'..' path" in caught.value.problem


def test_widget_package_over_the_entry_limit_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "widgets/Big.mpk", make_mpk("Big"))
    with pytest.raises(InputError, match="max_archive_entries"):
        read_native(DirectoryTree(tmp_path), Limits(max_archive_entries=2))


def test_widget_xml_with_doctype_is_refused(tmp_path: Path) -> None:
    evil = (
        '<?xml version="1.0"?>\n<!DOCTYPE widget [<!ENTITY x "boom">]>\n'
        '<widget id="a.b" xmlns="http://www.mendix.com/widget/1.0/"><name>&x;</name></widget>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("package.xml", PACKAGE_XML.format(name="Evil", version="1", lower="evil"))
        archive.writestr("Evil.xml", evil)
    write(tmp_path, "widgets/Evil.mpk", buffer.getvalue())
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert caught.value.location.endswith("widgets/Evil.mpk!Evil.xml")
    assert "DOCTYPE" in caught.value.problem


def test_widget_package_without_package_xml(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("A.xml", "<widget/>")
    write(tmp_path, "widgets/A.mpk", buffer.getvalue())
    with pytest.raises(InputError, match=r"no package\.xml"):
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)


def test_widget_declaration_with_wrong_types(tmp_path: Path) -> None:
    write(tmp_path, "widgets/A.mpk", make_mpk("A", extra={"A.json": b'{"nativeDependencies": ["x"]}'}))
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert caught.value.location.endswith("widgets/A.mpk!A.json")


def test_config_with_invalid_json_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "nativemobile/.config", '{"configurations": {"Default": {"appName": "x",}}}')
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert caught.value.location.endswith("nativemobile/.config")
    assert "invalid JSON" in caught.value.problem


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"appName": 12}, "'appName' must be a string, not a number"),
        ({"hermesEnabled": "yes"}, "'hermesEnabled' must be true or false, not a string"),
        ({"permissions": {"name": "x"}}, "'permissions' must be a list, not an object"),
        ({"permissions": [{"title": "no name"}]}, "'name' must be a non-empty string, not null"),
        ({"deviceTarget": {"phone": "true"}}, "'phone' must be true or false, not a string"),
        ({"buildNumber": 4.5}, "'buildNumber' must be a string or whole number, not a number"),
        ({"capabilities": []}, "capabilities must be a JSON object, not a list"),
    ],
)
def test_config_with_wrong_types_names_file_and_key(
    tmp_path: Path, configuration: dict[str, object], message: str
) -> None:
    write(tmp_path, "nativemobile/.config", json.dumps({"configurations": {"Default": configuration}}))
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert caught.value.location.endswith("nativemobile/.config")
    assert message in caught.value.problem


def test_config_whose_configurations_is_not_an_object(tmp_path: Path) -> None:
    write(tmp_path, "nativemobile/.config", json.dumps({"configurations": ["Default"]}))
    with pytest.raises(InputError, match="configurations must be a JSON object, not a list"):
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)


def test_js_action_declaration_with_invalid_json(tmp_path: Path) -> None:
    write(tmp_path, "javascriptsource/mod/actions/Do.json", "{nativeDependencies: }")
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert caught.value.location.endswith("javascriptsource/mod/actions/Do.json")


def test_broken_vendored_package_json_is_a_problem_not_an_error(tmp_path: Path) -> None:
    write(tmp_path, "javascriptsource/mod/actions/node_modules/x/package.json", "{oops")
    facts = read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert facts.npm_dependencies == ()
    assert len(facts.problems) == 1 and "vendored package.json ignored" in facts.problems[0]


def test_template_file_with_doctype_or_bad_json(tmp_path: Path) -> None:
    build_template(tmp_path / "resources/native_template")
    write(
        tmp_path,
        "resources/native_template/android/app/src/main/res/values/strings.xml",
        '<!DOCTYPE r [<!ENTITY a "b">]><resources><string name="app_name">&a;</string></resources>',
    )
    with pytest.raises(InputError, match="DOCTYPE"):
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    write(tmp_path, "resources/native_template/android/app/src/main/res/values/strings.xml", STRINGS_XML)
    write(tmp_path, "resources/native_template/mendix_version.json", '{">=10.0.0": {"min": 1}}')
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert caught.value.location.endswith("resources/native_template/mendix_version.json")


def test_info_plist_with_entities_is_refused(tmp_path: Path) -> None:
    build_template(tmp_path / "resources/native_template")
    write(
        tmp_path,
        "resources/native_template/ios/nativeTemplate/Info.plist",
        '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "b">]><plist><dict><key>k</key>'
        "<string>&a;</string></dict></plist>",
    )
    with pytest.raises(InputError, match=r"Info\.plist"):
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)


# --------------------------------------------------------------------------------------------------
# the real native apps of the corpus

NATIVE_APPS = ("mendix__Native-Mobile-Resources", "openwallet-foundation-labs__farmworker-wallet-os")


@pytest.mark.corpus
@pytest.mark.parametrize("project", NATIVE_APPS)
def test_reads_every_revision_of_the_native_corpus_apps(
    corpus: Path, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    revisions = sorted(path for path in (corpus / project).iterdir() if path.is_dir())
    for revision in revisions:
        facts = read_native(DirectoryTree(revision), DEFAULT_LIMITS)
        assert facts.widgets, revision
        assert facts.required_dependencies(), revision
        assert len(facts.config) == 1, revision
        if project.startswith("openwallet"):
            assert facts.template is not None and facts.template.version is not None
            assert template_range_for("10.24.9", facts.template.mendix_version_ranges) == ("14.0.0", "*")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_malformed_info_plist_names_the_file(tmp_path: Path) -> None:
    build_template(tmp_path / "resources/native_template")
    write(tmp_path, "resources/native_template/ios/nativeTemplate/Info.plist", "<plist><dict><key>k</dict>")
    with pytest.raises(InputError) as caught:
        read_native(DirectoryTree(tmp_path), DEFAULT_LIMITS)
    assert caught.value.location.endswith("ios/nativeTemplate/Info.plist")
    assert "not a readable property list" in caught.value.problem
