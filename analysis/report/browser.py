"""Open a report in headless Chromium, as a reader would: a screenshot and the rendered DOM.

Used by ``mgca run --screenshot`` (writes ``report.png`` beside ``report.html``) and by the
end-to-end test, which asserts on what the browser drew. Chromium runs with no network at
all (every host name resolves to nothing), no sync, no first-run and a throw-away profile,
so a report that needed anything from outside would show it missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV_VAR = "MGCA_CHROMIUM"
"""Environment variable naming the Chromium executable, when it is not on PATH."""
WINDOW = (1280, 16000)
"""Screenshot size in CSS px: a desktop width, tall enough for the whole report."""


class BrowserError(RuntimeError):
    """Chromium is missing or failed; the message says what to install or check."""


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$MGCA_CHROMIUM``, else the first on PATH."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _chromium(args: list[str], html: Path, timeout_s: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise BrowserError(
            "no Chromium found to render the report: install it (Debian/Ubuntu: "
            f"apt-get install -y chromium) or set {ENV_VAR} to its executable"
        )
    if not html.is_file():
        raise BrowserError(f"{html} does not exist: render the report first")
    with tempfile.TemporaryDirectory(prefix="mgca-chromium-") as profile:
        command = [
            exe,
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


def rendered_dom(html: Path, timeout_s: float = 60) -> str:
    """The DOM Chromium built from ``html`` (after parsing and layout), serialised."""
    return _chromium(["--dump-dom"], Path(html), timeout_s).stdout
