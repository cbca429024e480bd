"""The AT console as a student meets it: ``airlab lab`` (JupyterLab and the cloud
emulator), lesson 07 run from the Run menu, then typing in Debian's Chromium.

* ``AT`` + Enter: ``OK`` is inside the log's scroll box, in the viewport, within 1 s
  (no scrolling by hand), and ``AT+CGATT?`` gives ``+CGATT: 1``;
* leaving the box sends nothing; ↑/↓ walk the history like a shell, edits kept;
* each kind of line has its own colour; ``发`` and ``收`` render with a real CJK font
  (two different glyphs, not two identical "tofu" boxes);
* the hex view shows bytes; Save writes a 0600 file beside the notebook and says where.

A screenshot of each check goes to ``$AIRLAB_TEST_ARTIFACTS`` (default
``build/test-artifacts/`` in the repository, which git ignores).  One ``airlab lab`` and
one page serve the whole module; its HOME, XDG dirs, Jupyter dirs, registry and
endpoints file are temporary, so nothing of the user's is touched.

Skipped, with the reason, where Chromium or Playwright is missing (``.ci/run`` installs
Chromium and the ``fonts-noto-cjk`` font; Playwright comes with the ``test`` extra).
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.lab_helpers import REPO, airlab_lab, run_all, shot

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

LESSON = "07_console.ipynb"
TOKEN = "airlab-console-test"

LOG = ".jp-NotebookPanel .airlab-log"
INPUT = ".jp-NotebookPanel .airlab-console-input input[type=text]"

#: True when the newest row holding ``text`` (after row ``after``) is inside the log's
#: scroll box and inside the window: seen without scrolling.
IN_VIEW_JS = """([text, after]) => {
  const box = document.querySelector('.jp-NotebookPanel .airlab-log');
  if (!box) return false;
  const rows = [...box.querySelectorAll('.airlab-row')].filter(
    r => Number(r.dataset.n) > after && r.querySelector('.airlab-text').textContent === text);
  if (!rows.length) return false;
  const r = rows[rows.length - 1].getBoundingClientRect();
  const b = box.getBoundingClientRect();
  return r.height > 0 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1
    && r.top >= 0 && r.bottom <= window.innerHeight;
}"""

LAST_N_JS = """() => {
  const rows = document.querySelectorAll('.jp-NotebookPanel .airlab-log .airlab-row');
  return rows.length ? Number(rows[rows.length - 1].dataset.n) : -1;
}"""


def _shot(page, name: str, selector: str | None = None) -> Path:  # type: ignore[no-untyped-def]
    return shot(page, f"console-{name}", selector)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``airlab lab`` on a free port, on a copy of lesson 07, in a temporary home."""
    base = tmp_path_factory.mktemp("console-lab")
    root = base / "notebooks"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / LESSON, root / LESSON)
    with airlab_lab(base, root, TOKEN) as running:
        yield running.url, root


@pytest.fixture(scope="module")
def page(lab: tuple[str, Path]) -> Iterator[object]:
    """Lesson 07 after Run All, in one Chromium page for the module."""
    url, _ = lab
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(60_000)
        try:
            run_all(tab, f"{url}/lab/tree/{LESSON}?token={TOKEN}&reset")
            tab.wait_for_selector(f"{LOG} .airlab-row")
            news = tab.locator(".Toastify__toast").filter(has_text="news")
            assert news.count() == 0, "airlab lab must not ask about Jupyter news"
            tab.set_default_timeout(10_000)
            yield tab
        finally:
            browser.close()


def _type(page, text: str, enter: bool = True) -> int:  # type: ignore[no-untyped-def]
    """Type ``text`` in the console's box (Enter if asked); returns the last row's n before."""
    before = page.evaluate(LAST_N_JS)
    page.locator(LOG).first.scroll_into_view_if_needed()  # the log below the box, in view
    box = page.locator(INPUT).first
    box.scroll_into_view_if_needed()
    box.click()
    box.fill(text)
    if enter:
        box.press("Enter")
    return before


def test_enter_shows_ok_in_view_within_a_second(page) -> None:  # type: ignore[no-untyped-def]
    page.locator(LOG).first.scroll_into_view_if_needed()
    page.locator(INPUT).first.scroll_into_view_if_needed()
    overflow = page.eval_on_selector(LOG, "b => b.scrollHeight > b.clientHeight")
    assert overflow, "the log should be longer than its box after Run All (else no test)"
    before = page.evaluate(LAST_N_JS)
    # stamp, in the page, when OK is first in view; then press Enter
    page.evaluate(
        """([js, after]) => {
          const inView = eval(js);
          window.__okSeen = null;
          window.__t0 = performance.now();
          const loop = () => {
            if (inView(["OK", after])) { window.__okSeen = performance.now(); return; }
            if (performance.now() - window.__t0 < 10000) requestAnimationFrame(loop);
          };
          requestAnimationFrame(loop);
        }""",
        [IN_VIEW_JS, before],
    )
    box = page.locator(INPUT).first
    box.fill("AT")
    t0 = page.evaluate("() => performance.now()")
    box.press("Enter")
    page.wait_for_function("() => window.__okSeen !== null", timeout=5000)
    elapsed = (page.evaluate("() => window.__okSeen") - t0) / 1000
    _shot(page, "1-enter-ok", LOG)
    print(f"Enter -> OK in view: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0, f"OK became visible {elapsed:.3f} s after Enter"
    assert page.locator(INPUT).first.input_value() == ""


def test_cgatt_answers_attached(page) -> None:  # type: ignore[no-untyped-def]
    before = _type(page, "AT+CGATT?")
    page.wait_for_function(IN_VIEW_JS, arg=["+CGATT: 1", before], timeout=5000)
    _shot(page, "2-cgatt", LOG)


def test_leaving_the_box_sends_nothing(page) -> None:  # type: ignore[no-untyped-def]
    before = _type(page, "ATI", enter=False)
    page.locator(LOG).first.click()  # focus leaves the box: a blur, a change event
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement?.type !== 'text'")
    _shot(page, "3-blur", ".jp-NotebookPanel .airlab-console-input")
    assert page.locator(INPUT).first.input_value() == "ATI"  # still there, not sent
    # a command sent after the blur: anything the blur had sent would come before it
    box = page.locator(INPUT).first
    box.fill("AT+CSQ")
    box.press("Enter")
    page.wait_for_function(IN_VIEW_JS, arg=["OK", before], timeout=5000)
    texts = page.eval_on_selector_all(
        f"{LOG} .airlab-row",
        "(rows, after) => rows.filter(r => Number(r.dataset.n) > after)"
        ".map(r => r.querySelector('.airlab-text').textContent)",
        before,
    )
    assert "ATI" not in texts and "AT+CSQ" in texts


def test_up_and_down_walk_the_history(page) -> None:  # type: ignore[no-untyped-def]
    for line in ("AT+CGSN", "AT+CEREG?"):
        before = _type(page, line)
        page.wait_for_function(IN_VIEW_JS, arg=["OK", before], timeout=5000)
    box = page.locator(INPUT).first
    box.fill("AT+MQ")  # a line being typed is kept while walking the history
    box.press("ArrowUp")
    assert box.input_value() == "AT+CEREG?"
    box.press("ArrowUp")
    assert box.input_value() == "AT+CGSN"
    box.press("End")
    box.type("X")  # edit a recalled line
    box.press("ArrowDown")
    assert box.input_value() == "AT+CEREG?"
    box.press("ArrowUp")
    assert box.input_value() == "AT+CGSNX"  # the edit is kept
    box.press("ArrowDown")
    box.press("ArrowDown")
    assert box.input_value() == "AT+MQ"
    _shot(page, "4-history", ".jp-NotebookPanel .airlab-console-input")
    # Up did not move the notebook's active cell, nor leave the box
    assert page.evaluate("() => document.activeElement?.type === 'text'")
    box.fill("")


def test_kinds_have_their_colours(page) -> None:  # type: ignore[no-untyped-def]
    colours = page.eval_on_selector_all(
        f"{LOG} .airlab-row",
        """rows => Object.fromEntries(rows.map(r => [r.dataset.kind,
             getComputedStyle(r.querySelector('.airlab-text')).color]))""",
    )
    _shot(page, "5-colours", LOG)
    for kind in ("sent", "echo", "answer", "final"):
        assert kind in colours, colours
    assert len({colours[k] for k in ("sent", "echo", "answer", "final")}) == 4, colours
    if "error" in colours:
        assert colours["error"] not in {colours["final"], colours["answer"]}
    marks = page.eval_on_selector_all(
        f"{LOG} .airlab-mark", "ms => [...new Set(ms.map(m => m.textContent))]"
    )
    assert "发→◇" in marks and "收←◆" in marks


def test_chinese_marks_render_with_a_cjk_font(page) -> None:  # type: ignore[no-untyped-def]
    # Without a CJK font both glyphs are the same "missing glyph" box: compare pixels.
    same = page.eval_on_selector(
        f"{LOG} .airlab-mark",
        """m => {
          const font = getComputedStyle(m).font;
          const draw = (ch) => {
            const c = document.createElement('canvas');
            c.width = c.height = 48;
            const g = c.getContext('2d');
            g.font = font.replace(/\\d+(\\.\\d+)?px/, '32px');
            g.fillText(ch, 4, 36);
            return c.toDataURL();
          };
          return { fa: draw('发') === draw('收'), tofu: draw('发') === draw('\\u{10FFFD}') };
        }""",
    )
    _shot(page, "6-cjk", LOG)
    assert not same["fa"] and not same["tofu"], "发/收 render as boxes: no CJK font"


def test_a_reader_scrolled_up_is_not_yanked(page) -> None:  # type: ignore[no-untyped-def]
    page.eval_on_selector(LOG, "b => { b.scrollTop = 0; }")
    page.wait_for_function(f"() => document.querySelector('{LOG}').scrollTop === 0")
    before = _type(page, "AT")
    jump = page.locator(f"{LOG} ~ .airlab-jump").first
    jump.wait_for()  # "▼ 3 new lines"
    assert "new line" in jump.text_content()
    assert page.eval_on_selector(LOG, "b => b.scrollTop") == 0  # still where the reader is
    _shot(page, "7-scrolled-up", f"{LOG} >> xpath=..")
    jump.click()
    page.wait_for_function(IN_VIEW_JS, arg=["OK", before], timeout=5000)
    assert jump.is_hidden()


def test_body_field_after_download(page) -> None:  # type: ignore[no-untyped-def]
    raw = page.locator(".jp-NotebookPanel label:has-text('raw (as typed, like sscom)')").first
    raw.click()  # raw mode: lines go as typed, the module's prompts open the body field
    try:
        before = _type(page, "AT+HTTPINIT")
        page.wait_for_function(IN_VIEW_JS, arg=["AT+HTTPINIT", before], timeout=5000)
        before = _type(page, "AT+HTTPDATA=5,2000")
        page.wait_for_function(IN_VIEW_JS, arg=["DOWNLOAD", before], timeout=5000)
        field = page.locator(".jp-NotebookPanel .airlab-bodyfield textarea").first
        field.wait_for()
        assert page.evaluate("() => document.activeElement?.tagName") == "TEXTAREA"
        field.fill("hell")
        count = page.locator(".jp-NotebookPanel .airlab-body-count").first
        assert count.text_content() == "4 of 5 bytes"  # one short: shown in red
        assert "airlab-mismatch" in (count.get_attribute("class") or "")
        field.fill("hello")
        assert count.text_content() == "5 of 5 bytes"
        _shot(page, "8-body", ".jp-NotebookPanel .airlab-console-input")
        page.locator(".jp-NotebookPanel button.airlab-send-body").first.click()
        page.wait_for_function(IN_VIEW_JS, arg=["OK", before], timeout=5000)
        page.locator(".jp-NotebookPanel .airlab-bodyfield").first.wait_for(state="hidden")
        texts = page.eval_on_selector_all(
            f"{LOG} .airlab-row.airlab-dir-tx",
            "(rows, after) => rows.filter(r => Number(r.dataset.n) > after)"
            ".map(r => r.textContent)",
            before,
        )
        assert any("hello" in t for t in texts), texts
    finally:
        raw.click()


def test_hex_view_and_save(page, lab) -> None:  # type: ignore[no-untyped-def]
    _, root = lab
    before = _type(page, "AT")
    page.wait_for_function(IN_VIEW_JS, arg=["OK", before], timeout=5000)
    page.locator(".jp-NotebookPanel label:has-text('hex (HEX显示)')").first.click()
    page.wait_for_function(IN_VIEW_JS, arg=["4F 4B", before], timeout=5000)  # "OK"
    _shot(page, "9-hex", LOG)
    page.locator(".jp-NotebookPanel label:has-text('hex (HEX显示)')").first.click()
    page.wait_for_function(IN_VIEW_JS, arg=["OK", before], timeout=5000)

    page.locator(".jp-NotebookPanel button:has-text('Save session')").first.click()
    message = page.locator(".jp-NotebookPanel :text('saved to')").first
    message.wait_for()
    _shot(page, "10-save", ".jp-NotebookPanel .airlab-console-input >> xpath=../..")
    saved = list(root.glob("console-*.jsonl"))
    assert len(saved) == 1 and str(saved[0]) in message.text_content()
    assert stat.S_IMODE(saved[0].stat().st_mode) == 0o600
    from airlab.at.transcript import Transcript

    assert any(r.data.startswith(b"AT+CGATT?") for r in Transcript.load(saved[0]).records)
