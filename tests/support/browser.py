"""A headless Chromium (Debian's package, driven by Playwright) for tests of the Web UI."""

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SCRIPT = Path(__file__).parents[2] / "scripts" / "install-browser.sh"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 30_000


def find_chromium() -> tuple[Path | None, str]:
    """Chromium, installed by ``scripts/install-browser.sh`` if missing; else why not."""
    if CHROMIUM.exists():
        return CHROMIUM, ""
    try:  # within the test's own timeout; `make test` runs the script before the suite
        done = subprocess.run(
            ["sh", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=150, check=False
        )
        why = done.stderr.strip() or f"exit {done.returncode}"
    except subprocess.TimeoutExpired:
        why = "it took more than 150 s"
    if CHROMIUM.exists():
        return CHROMIUM, ""
    return None, f"no {CHROMIUM}, and {INSTALL_SCRIPT} could not install it: {why}"


@asynccontextmanager
async def browser_page(chromium: Path) -> AsyncIterator[Page]:
    """A page of a fresh headless browser (an ephemeral profile), closed afterwards."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1440, "height": 1000})
            page = await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            await browser.close()


async def frames_text(page: Page) -> str:
    """The visible text of the page and all its frames (the UI renders Markdown in iframes)."""
    texts = []
    for frame in page.frames:
        try:
            texts.append(await frame.inner_text("body", timeout=2_000))
        except Exception:  # a frame navigating or detached right now
            continue
    return "\n".join(texts)


async def wait_for_text(page: Page, *needles: str, timeout: float = TIMEOUT_MS / 1000) -> str:
    """Wait until every needle is shown somewhere on the page or in its frames."""
    text = ""
    try:
        async with asyncio.timeout(timeout):
            while True:
                text = await frames_text(page)
                if all(n in text for n in needles):
                    return text
                await asyncio.sleep(0.25)
    except TimeoutError:
        missing = [n for n in needles if n not in text]
        raise AssertionError(
            f"not shown after {timeout}s: {missing}\n--- page ---\n{text}"
        ) from None
