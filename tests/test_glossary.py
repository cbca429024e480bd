"""docs/glossary.md: it parses, its tutorial steps are the tutorial's headings, and every
Chinese term a lesson writes in parentheses in its text is in it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COLUMNS = ("中文", "English", "Meaning", "Tutorial step", "Console (控制台)", "In airlab")

#: The section headings of the vendor tutorial (../shared/reference/air780ep_aliyun_at_tutorial.md).
TUTORIAL_HEADINGS = frozenset(
    {
        "简介",
        "准备工作",
        "阿里云操作",
        "产品操作",
        "设备操作",
        "连接阿里云",
        "一机一密AT HTTP鉴权连接",
        "一机一密AT直连MQTT",
        "一型一密AT方式连接",
        "发布与订阅消息",
        "发布消息",
        "订阅消息",
    }
)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAS_CJK = re.compile(f"[{_CJK}]")
_PARENS = re.compile(r"[(（]([^()（）]*)[)）]")
# A Chinese term: CJK characters, with Latin letters or digits written into it
# (自定义Topic类, AT固件, SIM卡); spaces and punctuation end it.
_TERM = re.compile(f"[A-Za-z0-9]*[{_CJK}]+(?:[A-Za-z0-9]+[{_CJK}]+)*[A-Za-z0-9]*")


def cjk_terms_in_parentheses(text: str) -> list[str]:
    """The Chinese terms written inside ``( )`` or ``（ ）`` in ``text``, in order.

    Example:
        >>> cjk_terms_in_parentheses("the log (监控运维 → 日志服务) of a (自定义Topic类)")
        ['监控运维', '日志服务', '自定义Topic类']
    """
    return [term for inner in _PARENS.findall(text) for term in _TERM.findall(inner)]


def load_glossary(path: Path = GLOSSARY) -> list[dict[str, str]]:
    """The glossary's rows: one dict per table row, keyed by :data:`COLUMNS` plus
    ``section`` (the ``##`` heading above the table)."""
    rows: list[dict[str, str]] = []
    section = ""
    header: list[str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("## "):
            section, header = line[3:].strip(), None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            assert tuple(header) == COLUMNS, f"line {number}: table header {header}"
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the |---| line
        assert len(cells) == len(COLUMNS), f"line {number}: {len(cells)} cells: {line}"
        rows.append({"section": section, **dict(zip(COLUMNS, cells, strict=True))})
    return rows


def variants(row: dict[str, str]) -> list[str]:
    return [v.strip() for v in row["中文"].split(" / ") if v.strip()]


@pytest.fixture(scope="module")
def glossary() -> list[dict[str, str]]:
    return load_glossary()


@pytest.fixture(scope="module")
def known_terms(glossary: list[dict[str, str]]) -> set[str]:
    return {v for row in glossary for v in variants(row)}


def test_extracts_terms_in_parentheses() -> None:
    text = (
        "the console (控制台), a tool (sscom, LLCOM, 串口调试助手), full-width（动态注册）, "
        "a path (设备管理 → 产品), (AT固件) and (自定义Topic类); not outside: 日志服务"
    )
    assert cjk_terms_in_parentheses(text) == [
        "控制台",
        "串口调试助手",
        "动态注册",
        "设备管理",
        "产品",
        "AT固件",
        "自定义Topic类",
    ]


def test_glossary_parses(glossary: list[dict[str, str]]) -> None:
    assert len(glossary) >= 100
    sections = {row["section"] for row in glossary}
    assert len(sections) == 4
    for row in glossary:
        for column in COLUMNS:
            assert row[column], f"{row['中文']}: empty {column}"
        for variant in variants(row):
            assert _HAS_CJK.search(variant), f"{variant!r} has no Chinese in it"
        assert _HAS_CJK.search(row["English"]) is None, f"{row['中文']}: English in Chinese?"
        assert row["Meaning"].endswith("."), f"{row['中文']}: one sentence, ending with '.'"


def test_each_term_once(glossary: list[dict[str, str]]) -> None:
    seen: dict[str, str] = {}
    for row in glossary:
        for variant in variants(row):
            assert variant not in seen, f"{variant} in two rows: {seen[variant]} and {row['中文']}"
            seen[variant] = row["中文"]


def test_tutorial_steps_are_the_tutorials_headings(glossary: list[dict[str, str]]) -> None:
    for row in glossary:
        step = row["Tutorial step"]
        if step == "—":
            continue
        heading, _, number = step.partition(" · ")
        assert heading in TUTORIAL_HEADINGS, f"{row['中文']}: {heading!r} is no tutorial heading"
        assert not number or number.isdigit() or number in TUTORIAL_HEADINGS, step


def test_console_paths_start_at_a_menu(glossary: list[dict[str, str]]) -> None:
    for row in glossary:
        path = row["Console (控制台)"]
        if path != "—" and "→" in path:
            assert _HAS_CJK.search(path.split("→")[0]), f"{row['中文']}: {path}"


def test_glossary_covers_the_tutorials_warnings(known_terms: set[str]) -> None:
    for term in ("注意", "切记", "一定注意", "动态注册", "日志服务", "监控运维", "物联网平台"):
        assert term in known_terms


def _core(term: str) -> str:
    return term.strip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_chinese_term_of_the_lessons_is_in_the_glossary(
    notebook: Path, known_terms: set[str]
) -> None:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    missing = sorted(
        {
            term
            for cell in cells
            if cell["cell_type"] == "markdown"
            for term in cjk_terms_in_parentheses("".join(cell["source"]))
            if term not in known_terms and _core(term) not in known_terms
        }
    )
    assert not missing, f"add to docs/glossary.md: {', '.join(missing)}"
