"""The instructor's dashboard as a teacher meets it: ``airlab lab``, a class made with
``airlab class create``, the notebook ``instructor/class_dashboard.ipynb`` run from the
Run menu in Debian's Chromium; then a student (a simulated module on seat 02, through the
same emulator) logs in and publishes, and the page shows it without a click: the seat's
row ticks "published" and the message appears in the newest messages.  A screenshot is
kept in ``$AIRLAB_TEST_ARTIFACTS`` (default ``build/test-artifacts/``).

Skipped, with the reason, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.browser.lab_helpers import REPO, RunningLab, airlab_lab, run_all, shot

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

NOTEBOOK = "instructor/class_dashboard.ipynb"
TOKEN = "airlab-dashboard-test"

#: The cs101 dashboard's state: its seat 02 row's "published" cell and its messages.
STATE_JS = """(text) => {
  const boards = [...document.querySelectorAll('.jp-NotebookPanel .airlab-dashboard')]
    .filter(b => b.textContent.includes('class cs101'));
  if (!boards.length) return null;
  const row = boards[0].querySelector("tr[data-seat='02']");
  const cells = row ? [...row.querySelectorAll('td')] : [];
  const heads = [...boards[0].querySelectorAll('th')].map(h => h.textContent);
  const published = cells[heads.indexOf('published')];
  const box = boards[0].closest('.widget-vbox') || document;
  const msg = [...box.querySelectorAll('.airlab-msg')].some(m => m.textContent.includes(text));
  return {published: published ? published.textContent.trim() : null, message: msg};
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    base = tmp_path_factory.mktemp("dashboard-lab")
    notebooks = base / "notebooks"
    (notebooks / "instructor").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / NOTEBOOK, notebooks / NOTEBOOK)
    with airlab_lab(base, notebooks, TOKEN) as running:
        made = subprocess.run(
            [sys.executable, "-m", "airlab", "class", "create", "--db", str(running.db),
             "--students", "3", "--name", "cs101", "--out", str(base / "handouts")],
            env=running.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        yield running


def test_the_dashboard_shows_a_students_publish(lab: RunningLab) -> None:
    from airlab.lesson import open_lesson
    from airlab.session import recipes

    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.set_default_timeout(90_000)
            run_all(tab, f"{lab.url}/lab/tree/{NOTEBOOK}?token={TOKEN}&reset")
            tab.wait_for_function(STATE_JS, arg="-")  # the class's dashboard is on the page
            news = tab.locator(".jp-Notification-Toast, .Toastify__toast").filter(has_text="news")
            assert news.count() == 0, "airlab lab must not ask about Jupyter news"
            tab.locator(
                ".airlab-dashboard:has-text('class cs101')"
            ).first.scroll_into_view_if_needed()
            before = tab.evaluate(STATE_JS, "hello from seat 02")
            assert before == {"published": "·", "message": False}, before

            student = open_lesson(seat="02", cloud=str(lab.endpoints_file))
            try:
                recipes.attach(student.session, apn="CMIOT")
                recipes.direct_mqtt(student.session, **student.identity.device())
                sent = time.monotonic()
                student.session.publish(
                    student.identity.topic("user/update"), "hello from seat 02", qos=1
                )
                tab.wait_for_function(
                    "(t) => { const s = (" + STATE_JS + ")(t);"
                    " return s && s.published === '✓' && s.message; }",
                    arg="hello from seat 02",
                    timeout=15_000,
                )
                shown = time.monotonic() - sent
            finally:
                student.close()
            shot(tab, "dashboard-student-published", ".airlab-dashboard:has-text('class cs101')")
            assert shown < 10, f"the publish took {shown:.1f} s to show"
        finally:
            browser.close()
