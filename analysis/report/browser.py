"""Open a report in headless Chromium, as a reader would: a screenshot and the rendered DOM.

Used by ``mgca run --screenshot`` (writes ``report.png`` beside ``report.html``: the whole page,
however tall, captured in tiles over the DevTools protocol and stitched) and by the
end-to-end test, which asserts on what the browser drew. Chromium runs with no network at
all (every host name resolves to nothing), no sync, no first-run and a throw-away profile,
so a report that needed anything from outside would show it missing.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV_VAR = "MGCA_CHROMIUM"
"""Environment variable naming the Chromium executable, when it is not on PATH."""
WINDOW = (1280, 16000)
"""Window of the plain ``--screenshot`` capture (first screen checks) in CSS px."""
PAGE_WIDTH = 1280
"""Width of the whole-page screenshot in CSS px (a desktop window)."""
TILE_HEIGHT = 4000
"""Height of each captured tile in CSS px (well below Chromium's texture limits)."""


class BrowserError(RuntimeError):
    """Chromium is missing or failed; the message says what to install or check."""


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$MGCA_CHROMIUM``, else the first on PATH."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _executable() -> str:
    exe = find_chromium()
    if exe is None:
        raise BrowserError(
            "no Chromium found to render the report: install it (Debian/Ubuntu: "
            f"apt-get install -y chromium) or set {ENV_VAR} to its executable"
        )
    return exe


HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def _chromium(args: list[str], html: Path, timeout_s: float) -> subprocess.CompletedProcess:
    exe = _executable()
    if not html.is_file():
        raise BrowserError(f"{html} does not exist: render the report first")
    with tempfile.TemporaryDirectory(prefix="mgca-chromium-") as profile:
        command = [
            exe,
            *HEADLESS_FLAGS,
            f"--user-data-dir={profile}",
            *args,
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise BrowserError(
                f"Chromium did not finish rendering {html} in {timeout_s} s"
            ) from exc
    if done.returncode != 0:
        raise BrowserError(
            f"Chromium failed on {html} (exit {done.returncode}): {done.stderr.strip()[-500:]}"
        )
    return done


def screenshot(
    html: Path, png: Path, window: tuple[int, int] = WINDOW, timeout_s: float = 60
) -> Path:
    """Render ``html`` and write a PNG screenshot to ``png`` (atomically); return ``png``."""
    png = Path(png)
    tmp = png.with_name(f".{png.name}.tmp.png")
    _chromium(
        [f"--screenshot={tmp}", f"--window-size={window[0]},{window[1]}"], Path(html), timeout_s
    )
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no screenshot of {html}")
    tmp.replace(png)
    return png


class _DevTools:
    """A Chromium driven over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4: replies
    out, each message JSON ending in a NUL byte): no network port, no extra package."""

    def __init__(self, exe: str, profile: str, timeout_s: float) -> None:
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        # above 3 and 4, so that the child's dup2 onto 3 and 4 cannot clobber them
        high_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)

        def child_fds() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.deadline = time.monotonic() + timeout_s
        self.process = subprocess.Popen(
            [
                exe,
                *HEADLESS_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # a full stderr pipe would block Chromium
            preexec_fn=child_fds,  # only dup2 before exec
            close_fds=False,
        )
        for fd in (cmd_r, out_w, high_r, high_w):
            os.close(fd)
        self.writer = os.fdopen(cmd_w, "wb", buffering=0)
        self.reader = os.fdopen(out_r, "rb", buffering=0)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if time.monotonic() > self.deadline:
                raise BrowserError("Chromium did not answer in time")
            chunk = self.reader.read(1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        request: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        self.writer.write(json.dumps(request).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise BrowserError(f"Chromium {method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._message())

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.writer.close()
        self.reader.close()


@contextlib.contextmanager
def _page(html: Path, width: int, timeout_s: float) -> Iterator[tuple[_DevTools, str]]:
    """``html`` loaded in a headless Chromium page ``width`` CSS px wide: the DevTools
    connection and the page's session id."""
    html = Path(html)
    exe = _executable()
    if not html.is_file():
        raise BrowserError(f"{html} does not exist: render the report first")
    with tempfile.TemporaryDirectory(prefix="mgca-chromium-") as profile:
        tools = _DevTools(exe, profile, timeout_s)
        try:
            pages = [
                t["targetId"]
                for t in tools.call("Target.getTargets")["targetInfos"]
                if t.get("type") == "page"
            ]
            if not pages:
                raise BrowserError("Chromium opened no page")
            session = tools.call("Target.attachToTarget", targetId=pages[0], flatten=True)[
                "sessionId"
            ]
            tools.call("Page.enable", session)
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=1300,
                deviceScaleFactor=1,
                mobile=False,
            )
            tools.call("Page.navigate", session, url=html.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            yield tools, session
        finally:
            tools.close()


def full_page_screenshot(
    html: Path, png: Path, width: int = PAGE_WIDTH, timeout_s: float = 120
) -> Path:
    """Render ``html`` at ``width`` CSS px and write the WHOLE page, however tall, to ``png``
    (atomically); return ``png``. The page is captured in tiles of ``TILE_HEIGHT`` px over the
    DevTools protocol and stitched (Pillow), so nothing is cut off at a window height."""
    from PIL import Image

    png = Path(png)
    tiles = []
    with _page(Path(html), width, timeout_s) as (tools, session):
        size = tools.call("Page.getLayoutMetrics", session)["cssContentSize"]
        height = int(size["height"] + 0.999)
        for top in range(0, height, TILE_HEIGHT):
            shot = tools.call(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={
                    "x": 0,
                    "y": top,
                    "width": width,
                    "height": min(TILE_HEIGHT, height - top),
                    "scale": 1,
                },
            )
            tiles.append(Image.open(io.BytesIO(base64.b64decode(shot["data"]))))
    page = Image.new("RGB", (width, sum(t.height for t in tiles)), "white")
    top = 0
    for tile in tiles:
        page.paste(tile, (0, top))
        top += tile.height
    tmp = png.with_name(f".{png.name}.tmp.png")
    page.save(tmp, format="PNG", optimize=True)
    tmp.replace(png)
    return png


def element_boxes(
    html: Path, selectors: Sequence[str], width: int = PAGE_WIDTH, timeout_s: float = 60
) -> dict[str, dict[str, float] | None]:
    """Where Chromium lays out the first element matching each CSS selector (page
    coordinates in CSS px: ``top``, ``bottom``, ``height``; ``None`` when nothing matches),
    e.g. to check that the report's first screen fits one page."""
    script = (
        "JSON.stringify(Object.fromEntries(" + json.dumps(list(selectors)) + ".map(s => {"
        " const e = document.querySelector(s); if (!e) return [s, null];"
        " const r = e.getBoundingClientRect();"
        " return [s, {top: r.top + scrollY, bottom: r.bottom + scrollY, height: r.height}]; })))"
    )
    with _page(Path(html), width, timeout_s) as (tools, session):
        done = tools.call("Runtime.evaluate", session, expression=script, returnByValue=True)
    return json.loads(done["result"]["value"])


def rendered_dom(html: Path, timeout_s: float = 60) -> str:
    """The DOM Chromium built from ``html`` (after parsing and layout), serialised."""
    return _chromium(["--dump-dom"], Path(html), timeout_s).stdout
