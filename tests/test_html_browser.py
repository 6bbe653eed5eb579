"""The HTML report in a real browser: it renders without console errors, the banner shows the verdict's
colour, and the filters work (a ``#level=…`` hash applied on load hides every other finding).

Uses Debian's headless Chromium (``apt-get install -y chromium``); skipped when it is not installed.
The page under test is the golden store scenario (``tests/golden/store-scenario.html``), which
``test_reports.py`` keeps equal to what the renderer produces.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

CHROMIUM = Path("/usr/bin/chromium")
GOLDEN = Path(__file__).resolve().parent / "golden"
PAGE = GOLDEN / "store-scenario.html"

VERDICT_COLOURS: dict[str, tuple[int, int, int]] = {
    "unclassified": (0x7E, 0x3F, 0xD1),
    "store": (0xC6, 0x28, 0x28),
    "data-risk": (0xD9, 0x48, 0x0F),
    "ota-redeploy": (0x94, 0x62, 0x00),
    "ota": (0x1B, 0x66, 0xD1),
    "none": (0x2B, 0x8A, 0x3E),
}
"""The banner colours of ``report.html.j2`` (``--c-<level>``)."""

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def by_id(root: etree._Element, element_id: str) -> etree._Element:
    """The one element with this id."""
    found = [element for element in root.iter() if element.get("id") == element_id]
    assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
    return found[0]


def by_class(root: etree._Element, name: str) -> list[etree._Element]:
    """Elements under ``root`` whose class list holds ``name``."""
    return [element for element in root.iter() if name in (element.get("class") or "").split()]


def text_of(element: etree._Element) -> str:
    return "".join(str(text) for text in element.itertext())


pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _page(tmp_path: Path) -> Path:
    assert PAGE.is_file(), "run tests/test_reports.py with MXOTA_UPDATE_GOLDEN=1 first"
    target = tmp_path / "report.html"
    shutil.copyfile(PAGE, target)
    return target


def _page_errors(stderr: str) -> list[str]:
    """Lines where the page reported a script error or logged to the console."""
    return [line for line in stderr.splitlines() if "Uncaught" in line or "CONSOLE" in line]


def _dump_dom(tmp_path: Path, url: str) -> tuple[str, str]:
    result = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def test_console_error_detection_works(tmp_path: Path) -> None:
    """A negative control: a page with a broken script is caught, so a clean run means something."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><title>x</title><script>notDefined();</script>", encoding="utf-8")
    _, stderr = _dump_dom(tmp_path, broken.as_uri())
    assert _page_errors(stderr), stderr[-2000:]


def test_page_renders_without_console_errors(tmp_path: Path) -> None:
    dom, stderr = _dump_dom(tmp_path, _page(tmp_path).as_uri())
    assert not _page_errors(stderr), "\n".join(_page_errors(stderr))
    document = lxml_html.document_fromstring(dom)
    assert document.get("data-ready") == "true", "the page's script did not finish"
    findings = by_class(document, "finding")
    assert findings
    assert all(element.get("hidden") is None for element in findings)


def test_level_filter_from_the_url_hash(tmp_path: Path) -> None:
    dom, stderr = _dump_dom(tmp_path, _page(tmp_path).as_uri() + "#level=store")
    assert not _page_errors(stderr), "\n".join(_page_errors(stderr))
    document = lxml_html.document_fromstring(dom)
    assert document.get("data-ready") == "true"
    findings = by_class(document, "finding")
    visible = [element for element in findings if element.get("hidden") is None]
    assert visible, "no store finding is visible"
    assert len(visible) < len(findings), "nothing was filtered out"
    assert {element.get("data-category") for element in visible} == {"store"}
    sections = [section for section in by_class(document, "group") if section.get("hidden") is None]
    assert [section.get("data-category") for section in sections] == ["store"]
    boxes = {box.get("data-filter"): box.get("checked") is not None for box in document.iter("input")}
    assert boxes.get("store") is True
    assert boxes.get("ota") is False
    assert f"{len(visible)} of {len(findings)} shown" in text_of(by_id(document, "shown"))


def test_search_from_the_url_hash(tmp_path: Path) -> None:
    dom, _ = _dump_dom(tmp_path, _page(tmp_path).as_uri() + "#q=Visit_Customer")
    document = lxml_html.document_fromstring(dom)
    visible = [element for element in by_class(document, "finding") if element.get("hidden") is None]
    assert visible
    assert all("visit_customer" in text_of(element).lower() for element in visible)


# ------------------------------------------------------------------------------------------- screenshot


def _decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the unfiltered pixel rows of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    width = height = channels = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    pixels = bytearray()
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        filter_type = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            upper_left = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                estimate = left + up - upper_left
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - upper_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else upper_left
                line[i] = (line[i] + predictor) & 0xFF
        pixels += line
        previous = line
    return width, height, channels, bytes(pixels)


def _close(pixel: tuple[int, int, int], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 6 for a, b in zip(pixel, colour, strict=True))


def test_banner_shows_the_verdict_colour(tmp_path: Path) -> None:
    page = _page(tmp_path)
    verdict = lxml_html.parse(str(page)).getroot().get_element_by_id("verdict").get("data-verdict")
    assert verdict == "store"
    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    width, height, channels, pixels = _decode_png(shot.read_bytes())
    assert width >= 1000 and height >= 600

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        offset = (y * width + x) * channels
        return pixels[offset], pixels[offset + 1], pixels[offset + 2]

    expected = VERDICT_COLOURS[verdict]
    # the banner's padding, left of the text column, across its height: all in the verdict colour
    banner = [pixel(x, y) for y in range(4, 120, 8) for x in (4, 20, 60)]
    assert all(_close(p, expected) for p in banner), (expected, sorted(set(banner)))
    # and it is a banner, not the whole page: further down the page is not in the verdict colour
    below = [pixel(x, height - 10) for x in (4, 20, 60)]
    assert not any(_close(p, expected) for p in below), below
