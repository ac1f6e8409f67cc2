"""The playground, end to end in a real browser: Chromium (Debian's `chromium`, driven by
Playwright) against r2v under a real uvicorn on loopback, rendering with the compositor.

Skipped on a machine without Chromium or Playwright, unless `CI` is set (`.ci/run` installs
Chromium). Screenshots at phone and desktop widths go to `$R2V_TEST_ARTIFACTS/playground`
(else the test's temp dir).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from r2v.bootstrap import build_runtime
from tests.conftest import LiveServer, make_settings
from tests.refserver import RefServer

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the `browser` fixture says so (the policy test needs no browser)
    sync_playwright = None

CHROMIUM = os.environ.get("R2V_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
UPLOAD_CAP = 2_000_000
"""The server's upload cap here, so that a modest picture is over it."""
PROMPT = "@Image2 at dusk, then @Image3"
FAST = "seedance-2.0-fast-reference-to-video"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = None
    if sync_playwright is None:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    elif not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: CI must run the browser tests")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        # the system's Chromium: Playwright's own browser download cannot work here
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    root = os.environ.get("R2V_TEST_ARTIFACTS")
    folder = Path(root) / "playground" if root else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def server(tmp_path: Path, refserver: RefServer) -> Iterator[tuple[LiveServer, str]]:
    settings = make_settings(tmp_path / "data", refserver, max_upload_bytes=UPLOAD_CAP)
    runtime = build_runtime(settings)
    key = runtime.keys.create("browser").secret
    try:
        with LiveServer(runtime) as live:
            yield live, key
    finally:
        runtime.close()


@pytest.fixture
def big_picture(tmp_path: Path) -> Path:
    """A PNG of noise, over the upload cap (and far under the seed's 30 MB)."""
    noise = np.random.default_rng(7).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    path = tmp_path / "huge.png"
    Image.fromarray(noise).save(path)
    assert path.stat().st_size > UPLOAD_CAP
    return path


def enter_key(page: Page, key: str) -> None:
    # a wrong key says so at once, in the server's words
    page.get_by_label("API key").fill("r2v_not-a-key")
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_contain_text("this API key is not valid")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    expect(page.locator("#key-status")).to_have_text("Key accepted.")
    assert page.evaluate("localStorage.getItem('r2v.apiKey')") == key


def add_references(page: Page, media_dir: Path, link: str, too_big: Path) -> None:
    """Two pictures by the file input, one by URL, and one the server refuses."""
    images = page.locator('[data-list="image"] .ref')
    page.get_by_label("Add references").set_input_files(
        [media_dir / "photo.jpg", media_dir / "poster.png"]
    )
    expect(page.locator('[data-list="image"] .ref[data-state="ready"]')).to_have_count(2)
    expect(images.nth(0).locator("img")).to_be_visible()  # a thumbnail of the file itself
    page.get_by_label("Image URL", exact=True).fill(link)
    page.get_by_role("button", name="Add image URL").click()
    expect(images).to_have_count(3)
    expect(page.locator('[data-count="image"]')).to_have_text("3 / 9")

    page.get_by_label("Add references").set_input_files([too_big])
    expect(page.locator("#refs-message")).to_contain_text(
        f"the body is larger than {UPLOAD_CAP:,} bytes"
    )
    expect(images).to_have_count(3)


def write_prompt(page: Page) -> None:
    """`@` completion by keyboard and by mouse, a mention of nothing marked, a thumbnail."""
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.click()
    page.keyboard.type("@Im")
    expect(page.get_by_role("listbox").get_by_role("option")).to_have_count(3)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.keyboard.type("at dusk, then @I")
    page.get_by_role("option", name="@Image3").click()
    page.keyboard.type("and @Image7")
    expect(page.locator("#mention-status")).to_have_text("@Image7 names no reference.")
    expect(page.locator("mark.unknown")).to_have_text("@Image7")
    for _ in " and @Image7":
        page.keyboard.press("Backspace")
    expect(prompt).to_have_value(PROMPT)
    expect(page.locator("mark.unknown")).to_have_count(0)

    first = page.locator('[data-list="image"] .ref').nth(0)
    first.get_by_role("button", name="insert the mention").click()
    expect(prompt).to_have_value(PROMPT + " @Image1 ")
    for _ in " @Image1 ":
        page.keyboard.press("Backspace")
    expect(page.locator("#char-count")).to_have_text(f"{len(PROMPT)} / 5000")


def generate(page: Page) -> list[int]:
    """Generate (a double click), wait for the end; the progress values the page showed."""
    page.evaluate(
        """() => {
          window.progressSeen = [];
          const bar = document.getElementById('task-progress');
          new MutationObserver(() => window.progressSeen.push(bar.value))
            .observe(bar, {attributes: true});
        }"""
    )
    page.get_by_role("button", name="Generate").dblclick()
    status = page.locator("#task-status")
    expect(status).to_have_text(re.compile("Completed|Failed"), timeout=60_000)
    error = page.locator("#task-error")
    assert status.inner_text() == "Completed", error.inner_text() if error.is_visible() else ""
    seen: list[int] = page.evaluate("window.progressSeen")
    return seen


@pytest.mark.slow
def test_the_playground_makes_a_video_in_a_browser(
    browser: Browser,
    server: tuple[LiveServer, str],
    refserver: RefServer,
    media_dir: Path,
    big_picture: Path,
    artifacts: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live, key = server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(live.url + "/")
    expect(page).to_have_title("r2v playground")
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
              .filter(el => !(el.labels?.length || el.getAttribute('aria-label')
                              || el.textContent.trim()))
              .map(el => el.id || el.outerHTML.slice(0, 80))"""
    )
    assert not unnamed, f"controls without a label: {unnamed}"

    enter_key(page, key)
    add_references(page, media_dir, refserver.url("/files/square.webp"), big_picture)
    write_prompt(page)
    page.get_by_label("Model").select_option(label="Fast")
    page.get_by_label("Resolution").select_option("480p")
    page.get_by_label("Duration").select_option("6")

    seen = generate(page)
    assert seen == sorted(seen) and seen[-1] == 100, seen
    assert any(0 < value < 100 for value in seen), f"no progress shown between 0 and 100: {seen}"
    tasks = httpx.get(f"{live.url}/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    [made] = tasks.json()["data"]  # a double click made one task
    expect(page.locator("#task-id")).to_have_text(made["id"])

    # the video plays, as long as asked
    video = page.locator("#result-video")
    page.wait_for_function("() => document.getElementById('result-video').readyState >= 1")
    assert abs(video.evaluate("v => v.duration") - 6.0) < 0.1
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.getElementById('result-video').currentTime > 0.3")
    expect(page.locator("#result-seed")).to_have_text(str(made["task_info"]["seed"]))
    signed_path = made["results"][0].split("?")[0]  # signed afresh on every read
    expect(page.get_by_role("link", name="Download MP4")).to_have_attribute(
        "href", re.compile(re.escape(signed_path) + r"\?expires=")
    )

    # the request as curl and as Python: exact, and without the key
    page.get_by_role("button", name="Copy as curl").click()
    curl = page.locator("#snippet").inner_text()
    assert f"{live.url}/v1/videos/generations" in curl and "$R2V_API_KEY" in curl
    assert f'"prompt": "{PROMPT}"' in curl and key not in curl
    page.get_by_role("button", name="Copy as Python").click()
    python = page.locator("#snippet").inner_text()
    assert "client.videos.create(" in python and 'resolution="480p"' in python
    assert key not in python

    # the result back as a reference video
    page.get_by_role("button", name="Use as reference").click()
    expect(page.locator('[data-list="video"] .ref[data-state="ready"]')).to_have_count(1)
    expect(page.locator('[data-list="video"] .tag')).to_have_text("@Video1")
    page.screenshot(path=artifacts / "desktop.png", full_page=True)

    # a second, longer task, cancelled while it runs
    page.get_by_label("Model").select_option(label="Standard")
    page.get_by_label("Resolution").select_option("720p")
    page.get_by_label("Duration").select_option("15")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#task-id")).not_to_have_text(made["id"])
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#task-status")).to_have_text("Failed")
    expect(page.locator("#task-error-code")).to_have_text("request_cancelled")

    # both in the history, newest first, the finished one with its thumbnail
    history = page.locator("#history-list .history-item")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_have_attribute("data-status", "failed")
    expect(history.nth(1)).to_have_attribute("data-status", "completed")
    expect(history.nth(1).locator(".history-thumb img")).to_be_visible()
    expect(history.nth(1)).to_contain_text(PROMPT)

    # opening one shows it; Re-run fills the form with its request
    history.nth(1).get_by_role("button", name="Open").click()
    expect(page.locator("#task-id")).to_have_text(made["id"])
    expect(page.locator("#task-status")).to_have_text("Completed")
    history.nth(1).get_by_role("button", name="Re-run").click()
    prompt = page.get_by_label("Prompt", exact=True)
    expect(prompt).to_have_value(PROMPT)
    expect(page.get_by_label("Model")).to_have_value(FAST)
    expect(page.get_by_label("Resolution")).to_have_value("480p")
    expect(page.get_by_label("Duration")).to_have_value("6")
    expect(page.locator('[data-list="image"] .ref')).to_have_count(3)
    expect(page.locator('[data-list="video"] .ref')).to_have_count(0)
    # a task this browser did not make: its request as the server kept it, references too
    page.evaluate("localStorage.removeItem('r2v.requests')")
    page.get_by_label("Resolution").select_option("720p")
    history.nth(1).get_by_role("button", name="Re-run").click()
    expect(page.locator('[data-list="image"] .ref')).to_have_count(3)
    expect(prompt).to_have_value(PROMPT)
    expect(page.get_by_label("Aspect ratio")).to_have_value("adaptive")  # as sent
    expect(page.get_by_label("Resolution")).to_have_value("480p")
    expect(page.get_by_label("Duration")).to_have_value("6")

    page.emulate_media(color_scheme="dark")
    page.screenshot(path=artifacts / "desktop-dark.png")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "sideways scrolling"

    # forgetting the key takes it out of the browser
    page.get_by_role("button", name="Forget key").click()
    assert page.evaluate("localStorage.getItem('r2v.apiKey')") is None
    context.close()
    assert not problems, problems

    # the Python it gave is a working program
    monkeypatch.setenv("R2V_API_KEY", key)
    monkeypatch.chdir(tmp_path)
    exec(compile(python, "copied.py", "exec"), {})  # the code the page gave, as is
    assert (tmp_path / "out.mp4").stat().st_size > 0


def test_the_page_is_served_with_a_strict_policy(server: tuple[LiveServer, str]) -> None:
    live, _key = server
    with httpx.Client(base_url=live.url) as client:
        for path in ("/", "/playground"):
            page = client.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            policy = page.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src 'self';" in policy
            assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
            assert page.headers["x-content-type-options"] == "nosniff"
            assert '<script type="module" src="playground/app.js">' in page.text
        script = client.get("/playground/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.headers["x-content-type-options"] == "nosniff"
        again = client.get("/playground/app.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304
        missing = client.get("/playground/nothing.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert "/" not in client.get("/openapi.json").json()["paths"]
        # the API's own answers carry none of the page's policy
        assert "content-security-policy" not in client.get("/healthz").headers
