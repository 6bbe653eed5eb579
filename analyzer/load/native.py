"""Read the native half of an app: widget packages, native dependency files, builder config, template.

``read_native`` turns the files of one snapshot into :class:`~analyzer.model.native.NativeFacts`.
It reads, it never judges: which change needs a store release is for the rules.

Where things are (``knowledge/native-and-rules.md`` section 5):

* ``widgets/*.mpk`` — zip packages, read with :class:`ZipTree` (size, count, ratio and path limits).
  ``package.xml`` lists the widget XML files; a widget's native dependencies are in the JSON file
  named after its XML (``Maps.xml`` → ``Maps.json``, ``{"nativeDependencies": {name: version}}``).
* ``javascriptsource/<module>/actions/<Action>.json`` — a JS action's native dependencies;
  ``dependencies.json`` / ``dependencies.txt`` beside them are licence lists and ``package.json`` /
  ``package-lock.json`` are npm files, none of them declarations.
* npm files under ``javascriptsource`` (see :func:`native_package_hints` for the heuristic):
  vendored ``node_modules/<pkg>/package.json`` that look native, and the native-looking
  ``dependencies`` of a module's own ``package.json``.
* ``nativemobile/.config`` — Native Mobile Builder settings; icons, splash screens, fonts and
  Firebase files it points to are hashed.
* ``resources/native_template/`` (or ``template_dir``) — a Native Template kept with the app.

Corrupt or hostile input that carries release facts (an unreadable widget package, a declaration
file or ``.config`` that is not valid JSON or has the wrong types, an XML file with a DOCTYPE) is an
:class:`InputError` naming the file. Files that only support a heuristic (vendored npm
``package.json``) are recorded in ``problems`` instead.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import plistlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import astuple
from pathlib import Path, PurePosixPath
from typing import Any
from xml.parsers.expat import ExpatError

from lxml import etree

from analyzer.errors import InputError
from analyzer.load.files import DirectoryTree, FileTree, ZipTree, one_line
from analyzer.load.limits import Limits
from analyzer.load.memo import ReadMemo, loader_fingerprint, open_record, record_key, seal_record
from analyzer.load.safe_xml import parse_xml
from analyzer.model.native import (
    AssetRef,
    ConfigScalar,
    NativeConfig,
    NativeDependency,
    NativeFacts,
    NativePermission,
    NativeTemplate,
    TemplateRange,
    WidgetInfo,
    WidgetPackage,
)
from analyzer.model.versions import parse_range

TEMPLATE_DIR = "resources/native_template"
"""Where an app that keeps its Native Template in the repository has it (farmworker-wallet-os)."""

CONFIG_PATH = "nativemobile/.config"

LICENCE_FILES = frozenset({"dependencies.json", "dependencies.txt"})
"""Licence listings beside JS actions and in widget packages: never native dependency declarations."""

NPM_FILES = frozenset({"package.json", "package-lock.json"})

SKIPPED_CONFIG_KEYS = frozenset({"iOSCertificates", "androidCertificates"})
"""Per-configuration keys left out of :attr:`NativeConfig.extra`: signing files on one machine."""

_JSON_MAX_DEPTH = 64


# --------------------------------------------------------------------------------------------------
# small helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(entries: Iterable[tuple[str, str]]) -> str:
    """One hash over (path, fingerprint) pairs, order-independent."""
    hasher = hashlib.sha256()
    for path, sha in sorted(entries):
        hasher.update(path.encode("utf-8", "surrogateescape") + b"\0" + sha.encode("ascii") + b"\n")
    return hasher.hexdigest()


def _loc(tree: FileTree, path: str) -> str:
    description = tree.description.rstrip("/")
    return f"{description}/{path}" if description else path


def _parse_json(data: bytes, location: str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(location, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            location, f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise InputError(location, "invalid JSON (nested too deeply)") from None
    _check_depth(value, location)
    return value


def _check_depth(value: Any, location: str) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > _JSON_MAX_DEPTH:
            raise InputError(location, f"JSON nested deeper than {_JSON_MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _parse_xml(data: bytes, location: str) -> etree._Element:
    """Parse XML with entities, DTDs and network off; a DOCTYPE is refused outright."""
    return parse_xml(data, location)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _flatten(value: Any, prefix: str, out: list[tuple[str, ConfigScalar]]) -> None:
    """Flatten JSON into dotted keys: ``a.b``, ``a.list[0].c``; empty containers keep a marker."""
    if isinstance(value, dict):
        if not value and prefix:
            out.append((prefix, "{}"))
        for key in value:
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        if not value and prefix:
            out.append((prefix, "[]"))
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}[{index}]", out)
    else:
        out.append((prefix, value))


def _dependency_map(value: Any, location: str, what: str) -> dict[str, str]:
    """A ``{name: version}`` object with string values, else an input error."""
    if not isinstance(value, dict):
        raise InputError(location, f"{what} must be a JSON object of name → version, not {_kind(value)}")
    result: dict[str, str] = {}
    for name, version in value.items():
        if not isinstance(version, str):
            raise InputError(location, f"{what}[{name!r}] must be a version string, not {_kind(version)}")
        result[name] = version
    return result


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --------------------------------------------------------------------------------------------------
# entry point


def read_native(
    tree: FileTree, limits: Limits, template_dir: str | None = None, memo: ReadMemo | None = None
) -> NativeFacts:
    """Read every native fact of one snapshot; an app without any gives an empty ``NativeFacts``.

    ``template_dir`` names the Native Template folder when it is not ``resources/native_template``:
    first as a folder of the app, else as a directory on disk (``--native-template DIR``).
    """
    paths = tree.paths()
    problems: list[str] = []
    widgets = read_widgets(tree, limits, paths, memo)
    js_deps = read_js_action_dependencies(tree, paths)
    npm_deps = read_npm_dependencies(tree, paths, problems)
    configs = read_native_config(tree, paths, problems)
    template = _find_template(tree, paths, limits, template_dir, problems)
    return NativeFacts(
        widgets=widgets,
        js_action_dependencies=js_deps,
        npm_dependencies=npm_deps,
        config=configs,
        template=template,
        problems=tuple(sorted(set(problems))),
    )


# --------------------------------------------------------------------------------------------------
# widgets


def read_widgets(
    tree: FileTree, limits: Limits, paths: tuple[str, ...] | None = None, memo: ReadMemo | None = None
) -> tuple[WidgetPackage, ...]:
    """Every ``widgets/*.mpk`` of the app (packages in subfolders are not loaded by Studio Pro).

    A package whose bytes the ``memo`` has read before (the other snapshot of a check) is reused.
    """
    all_paths = tree.paths() if paths is None else paths
    wanted = [
        path
        for path in all_paths
        if path.startswith("widgets/") and path.count("/") == 1 and path.lower().endswith(".mpk")
    ]
    known = memo.widgets if memo is not None else {}
    store = memo.store if memo is not None else None

    def kept(key: tuple[str, str]) -> WidgetPackage | None:
        """A package read before: in this run, else in the store (then kept for this run too)."""
        package = known.get(key)
        if package is None and store is not None:
            record = store.get(widget_key(key, limits))
            try:
                package = decode_widget_package(record, key[0]) if record is not None else None
            except ValueError:
                package = None  # a damaged record is a miss: the package is read and the record written again
            if package is not None:
                known[key] = package
        return package

    packages: list[WidgetPackage] = []
    unread: list[str] = []
    for path in wanted:
        blob = tree.blob_id(path)
        package = kept((path, f"git:{blob}")) if blob is not None else None
        if package is not None:
            packages.append(package)
        else:
            unread.append(path)
    for path, data in tree.read_many(unread):
        key = (path, f"sha256:{_sha256(data)}")
        package = kept(key)
        if package is None:
            package = known[key] = read_widget_package(path, data, limits, _loc(tree, path))
            if store is not None:
                store.put(widget_key(key, limits), encode_widget_package(package))
        blob = tree.blob_id(path)
        if blob is not None:
            by_blob = (path, f"git:{blob}")
            if store is not None and by_blob not in known:  # read from git: found by its blob next time
                store.put(widget_key(by_blob, limits), encode_widget_package(package))
            known[by_blob] = package
        packages.append(package)
    return tuple(sorted(packages))


WIDGET_RECORD_FORMAT = 1
"""Bump when the layout of a widget package's record changes."""


def widget_key(key: tuple[str, str], limits: Limits) -> str:
    """The store key of a widget package read from these bytes (``git:<blob>`` or ``sha256:<hex>``) at
    this path, under these limits, by this code: a package is parsed once, not in every run (76
    packages of a large app: 0.1 s of every load of a folder, 0.15 s with reading them from git)."""
    path, content = key
    return record_key("widget", WIDGET_RECORD_FORMAT, loader_fingerprint(), content, path, repr(astuple(limits)))


def encode_widget_package(package: WidgetPackage) -> bytes:
    """A widget package as ``marshal`` bytes of plain values, behind their CRC-32 (``seal_record``)."""
    widgets = tuple(
        (w.id, w.name, w.supported_platform, w.offline_capable, w.xml_path) for w in package.widgets
    )
    dependencies = tuple(
        (d.name, d.version, d.declared_by, d.source_path, d.evidence) for d in package.native_dependencies
    )
    return seal_record(
        marshal.dumps(
            (
                WIDGET_RECORD_FORMAT, package.path, package.package_name, package.version, widgets, dependencies,
                package.sha256, package.content_sha256,
            )
        )
    )


def decode_widget_package(record: bytes, path: str) -> WidgetPackage:
    """The widget package a record holds; ValueError when it is damaged, of another format or for
    another path."""
    payload = open_record(record, "widget")
    try:
        value: Any = marshal.loads(payload)
        version, stored_path, name, package_version, widgets, dependencies, digest, content_digest = value
        if version != WIDGET_RECORD_FORMAT or stored_path != path:
            raise ValueError("not a record of this format or path")
        package = WidgetPackage(
            path=path,
            package_name=name,
            version=package_version,
            widgets=tuple(
                WidgetInfo(id=i, name=n, supported_platform=p, offline_capable=bool(o), xml_path=x)
                for i, n, p, o, x in widgets
            ),
            native_dependencies=tuple(
                NativeDependency(name=n, version=v, declared_by=by, source_path=at, evidence=e)
                for n, v, by, at, e in dependencies
            ),
            sha256=digest,
            content_sha256=content_digest,
        )
    except (ValueError, TypeError, EOFError) as exc:
        raise ValueError(f"unreadable widget record ({type(exc).__name__})") from None
    texts = (package.package_name, package.version, package.sha256, package.content_sha256)
    if not all(isinstance(text, str) for text in texts):
        raise ValueError("widget record of another shape")
    return package


def read_widget_package(path: str, data: bytes, limits: Limits, location: str | None = None) -> WidgetPackage:
    """Read one widget package (``.mpk`` bytes); ``path`` is its path in the app."""
    where = location or path
    archive = ZipTree(data, where, limits)
    members = archive.paths()
    # Only the package and widget XML and the JSON declarations are read; the contents digest comes
    # from each member's size and CRC-32 in the archive directory (equal contents however repacked),
    # so the scripts and images that make up most of a package are never inflated.
    wanted = [name for name in members if name.lower().endswith((".xml", ".json"))]
    contents = dict(archive.read_many(wanted))
    content_sha = _digest((name, archive.fingerprint(name)) for name in members)
    if "package.xml" not in contents:
        raise InputError(where, "widget package has no package.xml")
    package_root = _parse_xml(contents["package.xml"], f"{where}!package.xml")
    client_module = next((el for el in package_root.iter() if _local(el.tag) == "clientModule"), None)
    if client_module is None:
        raise InputError(f"{where}!package.xml", "no <clientModule> element")
    package_name = client_module.get("name") or PurePosixPath(path).stem
    version = client_module.get("version") or ""
    widget_files = [
        (el.get("path") or "").replace("\\", "/").lstrip("/")
        for el in client_module.iter()
        if _local(el.tag) == "widgetFile"
    ]
    widgets: list[WidgetInfo] = []
    declarations: dict[str, str] = {}
    for xml_path in widget_files:
        if xml_path not in contents and xml_path in members:
            contents[xml_path] = archive.read(xml_path)
        if xml_path not in contents:
            raise InputError(
                f"{where}!package.xml", f"lists widget file {xml_path!r}, which the package lacks"
            )
        widget_root = _parse_xml(contents[xml_path], f"{where}!{xml_path}")
        if _local(widget_root.tag) != "widget":
            continue
        widget_id = widget_root.get("id") or ""
        if not widget_id:
            raise InputError(f"{where}!{xml_path}", "<widget> has no id attribute")
        name_el = next((el for el in widget_root if _local(el.tag) == "name"), None)
        name = (name_el.text or "").strip() if name_el is not None else ""
        widgets.append(
            WidgetInfo(
                id=widget_id,
                name=name or PurePosixPath(xml_path).stem,
                supported_platform=widget_root.get("supportedPlatform") or "Web",
                offline_capable=(widget_root.get("offlineCapable") or "").lower() == "true",
                xml_path=xml_path,
            )
        )
        json_path = _xml_json(xml_path)
        if json_path in contents:
            declarations[json_path] = f"widget:{widget_id}"
    # Declaration files at the package root that no widget XML names (a generated file named after
    # the widget, not the XML): count them too, for the package.
    for name in contents:
        if "/" in name or not name.lower().endswith(".json") or name in declarations:
            continue
        if name in LICENCE_FILES or name in NPM_FILES:
            continue
        declarations[name] = f"widget:{PurePosixPath(path).stem}"
    deps: list[NativeDependency] = []
    for json_path, declared_by in sorted(declarations.items()):
        location = f"{where}!{json_path}"
        value = _parse_json(contents[json_path], location)
        if not isinstance(value, dict) or "nativeDependencies" not in value:
            continue  # some other JSON file of the package, not a declaration
        declared = _dependency_map(value["nativeDependencies"], location, "nativeDependencies")
        deps.extend(
            NativeDependency(
                name=dep_name, version=dep_version, declared_by=declared_by, source_path=f"{path}!{json_path}"
            )
            for dep_name, dep_version in declared.items()
        )
    return WidgetPackage(
        path=path,
        package_name=package_name,
        version=version,
        widgets=tuple(sorted(widgets)),
        native_dependencies=tuple(sorted(deps)),
        sha256=_sha256(data),
        content_sha256=content_sha,
    )


def _xml_json(xml_path: str) -> str:
    return xml_path[: -len(".xml")] + ".json" if xml_path.lower().endswith(".xml") else ""


# --------------------------------------------------------------------------------------------------
# JavaScript actions and npm files


_ACTION_JSON = re.compile(r"^javascriptsource/([^/]+)/actions/([^/]+)\.json$")


def read_js_action_dependencies(
    tree: FileTree, paths: tuple[str, ...] | None = None
) -> tuple[NativeDependency, ...]:
    """``javascriptsource/<module>/actions/<Action>.json`` native dependency declarations."""
    all_paths = tree.paths() if paths is None else paths
    wanted: list[str] = []
    for path in all_paths:
        match = _ACTION_JSON.match(path)
        if match is None:
            continue
        file_name = path.rsplit("/", 1)[1]
        if file_name in LICENCE_FILES or file_name in NPM_FILES:
            continue
        wanted.append(path)
    deps: list[NativeDependency] = []
    for path, data in tree.read_many(wanted):
        match = _ACTION_JSON.match(path)
        assert match is not None
        module, action = match.group(1), match.group(2)
        location = _loc(tree, path)
        value = _parse_json(data, location)
        if not isinstance(value, dict):
            raise InputError(location, f"JS action declaration must be a JSON object, not {_kind(value)}")
        if "nativeDependencies" not in value:
            continue
        declared = _dependency_map(value["nativeDependencies"], location, "nativeDependencies")
        for name, version in declared.items():
            deps.append(
                NativeDependency(
                    name=name, version=version, declared_by=f"jsaction:{module}.{action}", source_path=path
                )
            )
    return tuple(sorted(deps))


_NATIVE_FILE_HINT = re.compile(r"(^|/)(android|ios)(/|$)|\.podspec$")


def native_package_hints(package: Mapping[str, Any]) -> tuple[str, ...]:
    """Why an npm ``package.json`` looks like a package with native code; empty when it does not.

    The heuristic (a vendored ``node_modules`` copy keeps only the JS parts, so the native folders
    themselves are not there to see):

    * ``codegenConfig`` — a React Native new-architecture native module;
    * ``files`` lists ``android/``, ``ios/`` or a ``*.podspec`` — it ships native sources;
    * ``rnpm`` — the old React Native linking config;
    * ``peerDependencies`` has ``react-native`` — written for React Native, so likely linked;
    * the name contains ``react-native`` — by convention (``react-native-geocoder`` and
      ``react-native-touch-id`` carry no other hint, yet are native).

    It errs toward "native": a JS-only package flagged here costs a question, a native package
    missed costs a broken OTA update. Pure helpers (``invariant``, ``mime``, ``url-parse``) carry
    none of these hints.
    """
    hints: list[str] = []
    if "codegenConfig" in package:
        hints.append("codegenConfig")
    files = package.get("files")
    if isinstance(files, list):
        kinds = set()
        for entry in files:
            if not isinstance(entry, str) or entry.startswith("!"):
                continue
            match = _NATIVE_FILE_HINT.search(entry.rstrip("/") + ("/" if entry.endswith("/") else ""))
            if match:
                kinds.add("podspec" if entry.endswith(".podspec") else match.group(2))
        hints.extend(f"files:{kind}" for kind in sorted(kinds))
    if "rnpm" in package:
        hints.append("rnpm")
    peers = package.get("peerDependencies")
    if isinstance(peers, dict) and "react-native" in peers:
        hints.append("peer:react-native")
    name = package.get("name")
    if isinstance(name, str) and _name_looks_native(name):
        hints.append("name")
    return tuple(hints)


def _name_looks_native(name: str) -> bool:
    return "react-native" in name and name != "react-native"


def _node_module_root(path: str) -> str | None:
    """The package name when ``path`` is a package's own ``node_modules/<pkg>/package.json``."""
    if not path.endswith("/package.json") or "/node_modules/" not in path:
        return None
    rest = path.rsplit("/node_modules/", 1)[1]
    parts = rest.split("/")
    if len(parts) == 2:
        return parts[0]
    if len(parts) == 3 and parts[0].startswith("@"):
        return f"{parts[0]}/{parts[1]}"
    return None


def read_npm_dependencies(
    tree: FileTree, paths: tuple[str, ...] | None = None, problems: list[str] | None = None
) -> tuple[NativeDependency, ...]:
    """Native-looking npm packages under ``javascriptsource``: vendored copies and module manifests."""
    all_paths = tree.paths() if paths is None else paths
    notes = problems if problems is not None else []
    vendored = [
        path
        for path in all_paths
        if path.startswith("javascriptsource/") and _node_module_root(path) is not None
    ]
    manifests = [
        path
        for path in all_paths
        if path.startswith("javascriptsource/")
        and path.endswith("/package.json")
        and "/node_modules/" not in path
        and path.count("/") in (2, 3)
    ]
    deps: list[NativeDependency] = []
    native_by_module: dict[str, dict[str, tuple[str, ...]]] = {}
    for path, data in tree.read_many(vendored):
        folder_name = _node_module_root(path)
        assert folder_name is not None
        try:
            package = _parse_json(data, _loc(tree, path))
        except InputError as exc:
            notes.append(f"{path}: vendored package.json ignored: {exc.problem}")
            continue
        if not isinstance(package, dict):
            notes.append(f"{path}: vendored package.json ignored: not a JSON object")
            continue
        hints = native_package_hints(package)
        name = package.get("name") if isinstance(package.get("name"), str) else folder_name
        version = package.get("version") if isinstance(package.get("version"), str) else ""
        assert isinstance(name, str) and isinstance(version, str)
        if not hints:
            continue
        module = path.split("/", 2)[1]
        native_by_module.setdefault(module, {})[name] = hints
        deps.append(
            NativeDependency(
                name=name,
                version=version,
                declared_by=f"npm:{path}",
                source_path=path,
                evidence="vendored package.json: " + ", ".join(hints),
            )
        )
    for path, data in tree.read_many(manifests):
        location = _loc(tree, path)
        try:
            package = _parse_json(data, location)
        except InputError as exc:
            notes.append(f"{path}: module package.json ignored: {exc.problem}")
            continue
        if not isinstance(package, dict):
            notes.append(f"{path}: module package.json ignored: not a JSON object")
            continue
        listed = package.get("dependencies", {})
        if not isinstance(listed, dict):
            notes.append(f"{path}: 'dependencies' is not an object; ignored")
            continue
        module = path.split("/", 2)[1]
        vendored_native = native_by_module.get(module, {})
        for name, version in listed.items():
            if not isinstance(version, str):
                notes.append(f"{path}: dependency {name!r} has no version string; ignored")
                continue
            if name in vendored_native:
                evidence = "module package.json; vendored copy: " + ", ".join(vendored_native[name])
            elif _name_looks_native(name):
                evidence = "module package.json; name"
            else:
                continue
            deps.append(
                NativeDependency(
                    name=name, version=version, declared_by=f"npm:{path}", source_path=path, evidence=evidence
                )
            )
    return tuple(sorted(deps))


# --------------------------------------------------------------------------------------------------
# nativemobile/.config


def read_native_config(
    tree: FileTree, paths: tuple[str, ...] | None = None, problems: list[str] | None = None
) -> tuple[NativeConfig, ...]:
    """The configurations of ``nativemobile/.config``; empty when the app has none."""
    all_paths = tree.paths() if paths is None else paths
    notes = problems if problems is not None else []
    if CONFIG_PATH not in all_paths:
        return ()
    location = _loc(tree, CONFIG_PATH)
    document = _parse_json(tree.read(CONFIG_PATH), location)
    reader = _ConfigReader(location)
    top = reader.obj(document, "the file")
    config_version = reader.opt_int(top, "configVersion")
    uses_app_center = reader.opt_bool(top, "usesAppCenter")
    configurations = reader.obj(top.get("configurations", {}), "configurations")
    path_set = set(all_paths)
    referenced: dict[str, str] = {}

    def asset_map(key: str) -> list[tuple[str, str]]:
        entries = top.get(key, {})
        found: list[tuple[str, str]] = []
        if isinstance(entries, dict):
            for name, entry in entries.items():
                entry_obj = reader.obj(entry, f"{key}[{name!r}]")
                found.append((name, reader.path(entry_obj, "path", f"{key}[{name!r}]")))
        elif isinstance(entries, list):
            for index, entry in enumerate(entries):
                if isinstance(entry, str):
                    found.append((str(index), _norm_path(entry)))
                else:
                    entry_obj = reader.obj(entry, f"{key}[{index}]")
                    label = entry_obj.get("name")
                    found.append(
                        (
                            label if isinstance(label, str) else str(index),
                            reader.path(entry_obj, "path", f"{key}[{index}]"),
                        )
                    )
        else:
            raise InputError(location, f"'{key}' must be an object, not {_kind(entries)}")
        return found

    icon_paths = asset_map("icons")
    splash_paths = asset_map("splashScreens")
    font_paths = asset_map("fonts")
    per_config: dict[str, dict[str, Any]] = {}
    capability_paths: dict[str, list[tuple[str, str]]] = {}
    for config_name, raw in configurations.items():
        body = reader.obj(raw, f"configurations[{config_name!r}]")
        per_config[config_name] = body
        caps = body.get("capabilities", {})
        files: list[tuple[str, str]] = []
        if isinstance(caps, dict):
            for cap_name, cap in caps.items():
                if (
                    isinstance(cap, dict)
                    and isinstance(cap.get("value"), str)
                    and _looks_like_file(cap["value"])
                ):
                    files.append((f"{cap_name}.value", _norm_path(cap["value"])))
        capability_paths[config_name] = files
    for _, path in [
        *icon_paths,
        *splash_paths,
        *font_paths,
        *(p for f in capability_paths.values() for p in f),
    ]:
        if path in path_set:
            referenced[path] = ""
    for path, data in tree.read_many(sorted(referenced)):
        referenced[path] = _sha256(data)

    def refs(pairs: list[tuple[str, str]], what: str) -> tuple[AssetRef, ...]:
        result = []
        for key, path in pairs:
            sha = referenced.get(path)
            if sha is None:
                notes.append(f"{CONFIG_PATH}: {what} {key!r} points to {path}, which is missing")
            result.append(AssetRef(key=key, path=path, sha256=sha))
        return tuple(sorted(result))

    icons = refs(icon_paths, "icon")
    splashes = refs(splash_paths, "splash screen")
    fonts = refs(font_paths, "font")
    result: list[NativeConfig] = []
    for config_name, body in per_config.items():
        where = f"configurations[{config_name!r}]"
        known = {
            "appName",
            "appIdentifier",
            "buildNumber",
            "runtimeUrl",
            "bundleName",
            "deviceTarget",
            "orientation",
            "hermesEnabled",
            "permissions",
            "capabilities",
            "appcenter",
        }
        extra: list[tuple[str, ConfigScalar]] = []
        for key, value in body.items():
            if key in known or key in SKIPPED_CONFIG_KEYS:
                continue
            _flatten(value, key, extra)
        bundle = body.get("bundleName")
        bundle_name: str | None
        if bundle is None or isinstance(bundle, str):
            bundle_name = bundle
        else:
            bundle_name = reader.opt_str(
                reader.obj(bundle, f"{where}.bundleName"), "main", f"{where}.bundleName"
            )
        capabilities: list[tuple[str, ConfigScalar]] = []
        _flatten(reader.obj(body.get("capabilities", {}), f"{where}.capabilities"), "", capabilities)
        app_center: list[tuple[str, ConfigScalar]] = []
        _flatten(reader.obj(body.get("appcenter", {}), f"{where}.appcenter"), "", app_center)
        result.append(
            NativeConfig(
                name=config_name,
                path=CONFIG_PATH,
                config_version=config_version,
                app_name=reader.opt_str(body, "appName", where),
                app_identifier=reader.opt_str(body, "appIdentifier", where),
                build_number=reader.build_number(body, where),
                runtime_url=reader.opt_str(body, "runtimeUrl", where),
                bundle_name=bundle_name,
                device_targets=reader.flags(body, "deviceTarget", where),
                orientation=reader.flags(body, "orientation", where),
                hermes_enabled=reader.opt_bool(body, "hermesEnabled", where),
                permissions=reader.permissions(body, where),
                capabilities=tuple(sorted(capabilities, key=lambda item: item[0])),
                capability_files=refs(capability_paths[config_name], f"{config_name} capability file"),
                app_center=tuple(sorted(app_center, key=lambda item: item[0])),
                uses_app_center=uses_app_center,
                fonts=fonts,
                icons=icons,
                splash_screens=splashes,
                extra=tuple(sorted((key, _canonical_json(value)) for key, value in extra)),
            )
        )
    return tuple(sorted(result, key=lambda config: config.name))


def _norm_path(path: str) -> str:
    return "/".join(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))


def _looks_like_file(value: str) -> bool:
    return bool(value) and ("/" in value or "\\" in value) and "://" not in value


class _ConfigReader:
    """Typed access to ``.config`` values; a wrong type is an input error naming the key."""

    def __init__(self, location: str) -> None:
        self.location = location

    def fail(self, where: str, key: str, expected: str, value: Any) -> InputError:
        return InputError(self.location, f"{where}: '{key}' must be {expected}, not {_kind(value)}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InputError(self.location, f"{where} must be a JSON object, not {_kind(value)}")
        return value

    def opt_str(self, body: Mapping[str, Any], key: str, where: str = "the file") -> str | None:
        value = body.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.fail(where, key, "a string", value)

    def opt_bool(self, body: Mapping[str, Any], key: str, where: str = "the file") -> bool | None:
        value = body.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(where, key, "true or false", value)

    def opt_int(self, body: Mapping[str, Any], key: str, where: str = "the file") -> int | None:
        value = body.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise self.fail(where, key, "a whole number", value)

    def build_number(self, body: Mapping[str, Any], where: str) -> str | None:
        value = body.get("buildNumber")
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self.fail(where, "buildNumber", "a string or whole number", value)

    def path(self, body: Mapping[str, Any], key: str, where: str) -> str:
        value = body.get(key)
        if not isinstance(value, str):
            raise self.fail(where, key, "a file path string", value)
        return _norm_path(value)

    def flags(self, body: Mapping[str, Any], key: str, where: str) -> tuple[tuple[str, bool], ...]:
        value = body.get(key)
        if value is None:
            return ()
        flags = self.obj(value, f"{where}.{key}")
        for name, flag in flags.items():
            if not isinstance(flag, bool):
                raise self.fail(f"{where}.{key}", name, "true or false", flag)
        return tuple(sorted(flags.items()))

    def permissions(self, body: Mapping[str, Any], where: str) -> tuple[NativePermission, ...]:
        value = body.get("permissions")
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(where, "permissions", "a list", value)
        result: list[NativePermission] = []
        for index, raw in enumerate(value):
            item_where = f"{where}.permissions[{index}]"
            item = self.obj(raw, item_where)
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise self.fail(item_where, "name", "a non-empty string", name)
            required = item.get("required", False)
            if not isinstance(required, bool):
                raise self.fail(item_where, "required", "true or false", required)
            result.append(
                NativePermission(
                    platform=self.opt_str(item, "platform", item_where) or "",
                    name=name,
                    title=self.opt_str(item, "title", item_where) or "",
                    required=required,
                    purpose=self.opt_str(item, "purpose", item_where),
                )
            )
        # not sorted(result): two entries that differ only in a missing vs given purpose compare None < str
        return tuple(sorted(result, key=lambda p: (p.platform, p.name, p.title, p.required, p.purpose or "")))


# --------------------------------------------------------------------------------------------------
# Native Template


def _find_template(
    tree: FileTree, paths: tuple[str, ...], limits: Limits, template_dir: str | None, problems: list[str]
) -> NativeTemplate | None:
    if template_dir is None:
        if any(path.startswith(TEMPLATE_DIR + "/") for path in paths):
            return read_native_template(tree, TEMPLATE_DIR, paths, problems)
        return None
    inside = _norm_path(template_dir)
    if inside and any(path.startswith(inside + "/") for path in paths):
        return read_native_template(tree, inside, paths, problems)
    directory = Path(template_dir)
    if directory.is_dir():
        outside = DirectoryTree(directory)
        return read_native_template(outside, "", outside.paths(), problems, root_label=str(directory))
    raise InputError(template_dir, "native template folder not found (neither in the app nor on disk)")


_TEMPLATE_SKIP = re.compile(
    r"(^|/)(node_modules|Pods|build|\.gradle|\.idea|xcuserdata|DerivedData)/"
    r"|(^|/)\.DS_Store$"
    r"|^android/local\.properties$"
    r"|^android/app/src/main/assets/index\.android\.bundle"
    r"|^ios/Bundle/"
    r"|^android/app/src/(dev|debug|androidTest)/"
    r"|^ios/Dev/"
    r"|^ios/nativeTemplate/Info-dev\.plist$"
)
"""Files of ``android/`` and ``ios/`` that are not hand-edited release sources: build output,
installed pods and npm packages, the JS bundle and its assets (ship over the air), the developer
app flavour (never released to the stores) and test sources."""

_BUNDLE_ASSET = re.compile(r"^android/app/src/main/res/(drawable-[a-z]+dpi|raw)/(?P<file>[^/]+)$")
_BUILDER_RAW = frozenset({"runtime_url", "native_dependencies.json", "code_push_key"})

_IOS_INFO_KEYS = re.compile(
    r"^(CFBundleDisplayName|CFBundleName|CFBundleIdentifier|CFBundleShortVersionString|CFBundleVersion"
    r"|NS\w*UsageDescription|UIAppFonts|UISupportedInterfaceOrientations(~ipad)?|UIDeviceFamily"
    r"|UIRequiredDeviceCapabilities|UIBackgroundModes|CFBundleURLTypes|Runtime url|CodePushKey"
    r"|GoogleMapsApiKey|LSApplicationQueriesSchemes|NSAppTransportSecurity)$"
)


def _is_bundle_asset(rel: str) -> bool:
    """A file the React Native bundler copied into the Android resources (ships with the bundle)."""
    match = _BUNDLE_ASSET.match(rel)
    if match is None:
        return False
    name = match.group("file")
    if match.group(1) == "raw":
        return name not in _BUILDER_RAW
    return not name.startswith("splash")


def read_native_template(
    tree: FileTree,
    root: str,
    paths: tuple[str, ...] | None = None,
    problems: list[str] | None = None,
    *,
    root_label: str | None = None,
) -> NativeTemplate:
    """Read a Native Template folder at ``root`` (``""`` for the tree's top) of ``tree``."""
    all_paths = tree.paths() if paths is None else paths
    notes = problems if problems is not None else []
    prefix = f"{root}/" if root else ""
    rels = sorted(path[len(prefix) :] for path in all_paths if path.startswith(prefix))
    files = dict(tree.read_many(prefix + rel for rel in rels))

    def data(rel: str) -> bytes | None:
        return files.get(prefix + rel)

    def where(rel: str) -> str:
        return _loc(tree, prefix + rel)

    def json_file(rel: str) -> Any:
        raw = data(rel)
        return None if raw is None else _parse_json(raw, where(rel))

    marker = data(".template_version")
    marker_version = marker.decode("utf-8", "replace").strip().removeprefix("v") if marker else None
    package = json_file("package.json")
    if package is not None and not isinstance(package, dict):
        raise InputError(where("package.json"), f"must be a JSON object, not {_kind(package)}")
    package_version: str | None = None
    dependencies: list[NativeDependency] = []
    if isinstance(package, dict):
        raw_version = package.get("version")
        if raw_version is not None and not isinstance(raw_version, str):
            raise InputError(where("package.json"), f"'version' must be a string, not {_kind(raw_version)}")
        package_version = raw_version
        declared = _dependency_map(package.get("dependencies", {}), where("package.json"), "dependencies")
        dependencies = [
            NativeDependency(
                name=name,
                version=version,
                declared_by="template",
                source_path=prefix + "package.json",
                evidence="template package.json",
            )
            for name, version in declared.items()
        ]
    ranges = _read_ranges(json_file("mendix_version.json"), where("mendix_version.json"))
    binary_deps: list[NativeDependency] = []
    binary_sources: dict[str, dict[str, str]] = {}
    for rel in (
        ".native_dependencies",
        "ios/native_dependencies.json",
        "android/app/src/main/res/raw/native_dependencies.json",
    ):
        value = json_file(rel)
        if value is None:
            continue
        mapping = _dependency_map(value, where(rel), "native dependencies")
        binary_sources[rel] = mapping
        binary_deps.extend(
            NativeDependency(
                name=name,
                version=version,
                declared_by=f"template:{rel}",
                source_path=prefix + rel,
                evidence="binary native_dependencies",
            )
            for name, version in mapping.items()
        )
    if len({_canonical_json(mapping) for mapping in binary_sources.values()}) > 1:
        notes.append(
            f"{root or root_label}: native_dependencies files disagree ({', '.join(sorted(binary_sources))})"
        )
    capabilities: list[tuple[str, ConfigScalar]] = []
    for platform in ("android", "ios"):
        value = json_file(f"capabilities.{platform}.json")
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InputError(
                where(f"capabilities.{platform}.json"), f"must be a JSON object, not {_kind(value)}"
            )
        _flatten(value, platform, capabilities)

    app_name = None
    strings = data("android/app/src/main/res/values/strings.xml")
    if strings is not None:
        strings_root = _parse_xml(strings, where("android/app/src/main/res/values/strings.xml"))
        for element in strings_root:
            if _local(element.tag) == "string" and element.get("name") == "app_name":
                app_name = "".join(str(text) for text in element.itertext())
    permissions: set[str] = set()
    orientations: set[str] = set()
    manifest = data("android/app/src/main/AndroidManifest.xml")
    if manifest is not None:
        android_ns = "{http://schemas.android.com/apk/res/android}"
        tools_ns = "{http://schemas.android.com/tools}"
        manifest_root = _parse_xml(manifest, where("android/app/src/main/AndroidManifest.xml"))
        for element in manifest_root.iter():
            tag = _local(element.tag)
            if tag in ("uses-permission", "uses-permission-sdk-23"):
                name = element.get(android_ns + "name")
                if name and element.get(tools_ns + "node") != "remove":
                    permissions.add(name)
            elif tag == "activity":
                orientation = element.get(android_ns + "screenOrientation")
                if orientation:
                    orientations.add(orientation)
    gradle = data("android/app/build.gradle")
    version_name = version_code = application_id = None
    if gradle is not None:
        version_name, version_code, application_id = _gradle_default_config(gradle.decode("utf-8", "replace"))
    runtime = data("android/app/src/main/res/raw/runtime_url")
    gradle_properties = _properties(data("android/gradle.properties"))
    ios_info = _ios_info(data("ios/nativeTemplate/Info.plist"), where("ios/nativeTemplate/Info.plist"))
    xcconfig = _xcconfig(data("ios/Config/config.xcconfig"))

    icons: list[tuple[str, str]] = []
    splashes: list[tuple[str, str]] = []
    patches: list[tuple[str, str]] = []
    native_files: list[tuple[str, str]] = []
    for rel in rels:
        body = files[prefix + rel]
        sha = _sha256(body)
        if rel.startswith(("patches/", "intermediary-patches/")):
            patches.append((rel, sha))
            continue
        if not rel.startswith(("android/", "ios/")) or _TEMPLATE_SKIP.search(rel) or _is_bundle_asset(rel):
            continue
        native_files.append((rel, sha))
        name = rel.rsplit("/", 1)[-1]
        if (
            re.match(r"^android/app/src/main/res/mipmap-[^/]+/ic_launcher", rel)
            or "/AppIcon.appiconset/" in rel
        ):
            icons.append((rel, sha))
        elif (
            re.match(r"^android/app/src/main/res/drawable[^/]*/splash", rel)
            or "/SplashScreen.imageset/" in rel
            or name == "LaunchScreen.storyboard"
            or rel == "android/app/src/main/res/layout/launch_screen.xml"
        ):
            splashes.append((rel, sha))
    return NativeTemplate(
        root=root or (root_label or ""),
        version=marker_version or package_version,
        package_version=package_version,
        mendix_version_ranges=ranges,
        dependencies=tuple(sorted(dependencies)),
        binary_native_dependencies=tuple(sorted(binary_deps)),
        capabilities=tuple(sorted(capabilities, key=lambda item: item[0])),
        android_app_name=app_name,
        android_permissions=tuple(sorted(permissions)),
        android_screen_orientations=tuple(sorted(orientations)),
        android_version_name=version_name,
        android_version_code=version_code,
        android_application_id=application_id,
        android_runtime_url=runtime.decode("utf-8", "replace").strip() if runtime is not None else None,
        gradle_properties=gradle_properties,
        ios_info=ios_info,
        xcconfig=xcconfig,
        icon_assets=tuple(icons),
        splash_assets=tuple(splashes),
        patches=tuple(patches),
        patches_digest=_digest(patches),
        native_files=tuple(native_files),
        native_files_digest=_digest(native_files),
    )


def _read_ranges(value: Any, location: str) -> tuple[TemplateRange, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InputError(
            location, f"must be a JSON object of Studio Pro range → template range, not {_kind(value)}"
        )
    ranges: list[TemplateRange] = []
    for pattern, entry in value.items():  # dicts keep file order
        if not isinstance(entry, dict):
            raise InputError(
                location, f"{pattern!r} must map to an object with 'min' and 'max', not {_kind(entry)}"
            )
        low, high = entry.get("min"), entry.get("max")
        if not isinstance(low, str) or not isinstance(high, str):
            raise InputError(location, f"{pattern!r}: 'min' and 'max' must be version strings")
        try:
            parse_range(pattern)
        except ValueError as exc:
            raise InputError(location, f"{pattern!r} is not a version range ({one_line(exc)})") from None
        ranges.append(TemplateRange(studio_pro_pattern=pattern, min=low, max=high))
    return tuple(ranges)


_GRADLE_FIELDS = {
    "versionName": re.compile(r"""^\s*versionName\s*[= ]\s*["']([^"']*)["']""", re.MULTILINE),
    "versionCode": re.compile(r"^\s*versionCode\s*[= ]\s*(\S+)", re.MULTILINE),
    "applicationId": re.compile(r"""^\s*applicationId\s*[= ]\s*["']([^"']*)["']""", re.MULTILINE),
}


def _gradle_default_config(text: str) -> tuple[str | None, str | None, str | None]:
    """``versionName``, ``versionCode``, ``applicationId`` of ``defaultConfig`` (first occurrence)."""
    start = text.find("defaultConfig")
    block = text[start:] if start >= 0 else text
    found: list[str | None] = []
    for key in ("versionName", "versionCode", "applicationId"):
        match = _GRADLE_FIELDS[key].search(block)
        found.append(match.group(1).strip() if match else None)
    return found[0], found[1], found[2]


def _properties(raw: bytes | None) -> tuple[tuple[str, str], ...]:
    """``key=value`` lines of a Java properties file (no continuation lines; enough for gradle)."""
    if raw is None:
        return ()
    values: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:]?\s*(.*)$", stripped)
        if match:
            values[match.group(1)] = match.group(2)
    return tuple(sorted(values.items()))


def _xcconfig(raw: bytes | None) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    values: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        stripped = line.split("//", 1)[0].strip() if "://" not in line else line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if sep and key.strip():
            # the builder escapes "//" (a comment in xcconfig) as "\/\/"
            values[key.strip()] = value.strip().replace("\\/", "/")
    return tuple(sorted(values.items()))


def _ios_info(raw: bytes | None, location: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if b"<!ENTITY" in raw:
        raise InputError(location, "property list declares XML entities (refused)")
    try:
        info = plistlib.loads(raw)
    except (plistlib.InvalidFileException, ExpatError, ValueError, TypeError, OverflowError) as exc:
        raise InputError(location, f"not a readable property list ({one_line(exc)})") from None
    if not isinstance(info, dict):
        raise InputError(location, "property list root must be a dictionary")
    values: list[tuple[str, str]] = []
    for key, value in info.items():
        if not _IOS_INFO_KEYS.match(str(key)):
            continue
        values.append((str(key), value if isinstance(value, str) else _canonical_json(_plain(value))))
    return tuple(sorted(values))


def _plain(value: Any) -> Any:
    """Plist values as JSON-able data (bytes and dates as strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
