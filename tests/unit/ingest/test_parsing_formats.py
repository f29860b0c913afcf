"""DOCX, PPTX, XLSX, CSV and JSON, and where each section of a document came from."""

from __future__ import annotations

import pytest

from services.ingest.parsing import ParseError, parse_document
from tests.unit.ingest.documents import docx_bytes, pptx_bytes, xlsx_bytes, zip_bytes

LEAVE_MARKDOWN = "| Type | Days |\n| --- | --- |\n| Annual | 25 |\n| Sick | 10 |"


def test_docx_sections_follow_the_heading_path_and_tables_become_markdown() -> None:
    parsed = parse_document("docx", docx_bytes())
    assert parsed.title == "Staff Handbook"
    by_heading = {s.heading: s.text for s in parsed.sections}
    assert by_heading["Benefits"] == "Benefits\n\nWe offer generous benefits."
    assert by_heading["Benefits > Leave"] == (
        "Leave\n\nEveryone gets paid leave every year.\n\n" + LEAVE_MARKDOWN)
    assert by_heading["Pay"] == "Pay\n\nSalaries are paid monthly."
    assert all(s.page is None for s in parsed.sections)


def test_pptx_slides_are_pages_titled_by_the_slide_title() -> None:
    parsed = parse_document("pptx", pptx_bytes())
    assert parsed.title == "Roadmap"
    assert [(s.page, s.heading) for s in parsed.sections] == [(1, "Roadmap"), (2, "Numbers")]
    assert parsed.sections[0].text == "Roadmap\n\nShip the new file formats in March."
    assert parsed.sections[1].text == (
        "Numbers\n\n| Quarter | Revenue |\n| --- | --- |\n| Q3 | 12 million |\n\n"
        "Notes: Mention the record quarter.")


def test_xlsx_sheets_become_markdown_tables_headed_by_the_sheet_name() -> None:
    parsed = parse_document("xlsx", xlsx_bytes(rows=2))
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Staff", "| Name | Start year |\n| --- | --- |\n| Person 0 | 2000 |\n"
                  "| Person 1 | 2001 |\n| Pipe \\| name |  |"),
        ("Offices", "| City | Desks |\n| --- | --- |\n| Oslo | 40 |"),
    ]


@pytest.mark.parametrize(
    "data",
    [b"name,city\nAnn,Oslo\n\"Bo, Jr\",Rome\n", b"name;city\r\nAnn;Oslo\r\nBo, Jr;Rome\r\n",
     b"\xef\xbb\xbfname\tcity\nAnn\tOslo\nBo, Jr\tRome\n"],
)
def test_csv_of_any_common_dialect_is_one_markdown_table(data: bytes) -> None:
    parsed = parse_document("csv", data)
    assert parsed.text == "| name | city |\n| --- | --- |\n| Ann | Oslo |\n| Bo, Jr | Rome |"


def test_json_records_become_tables_and_other_values_key_paths() -> None:
    data = (b'{"company": {"name": "Acme", "staff": [{"name": "Ann", "age": 31}, {"name": "Bo"}]},'
            b' "tags": ["a", "b"], "active": true}')
    parsed = parse_document("json", data)
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("company", "company > name: Acme\n\ncompany > staff:\n\n"
                    "| name | age |\n| --- | --- |\n| Ann | 31 |\n| Bo |  |"),
        ("tags", "tags[0]: a\ntags[1]: b"),
        ("active", "active: true"),
    ]


def test_invalid_json_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="could not parse JSON"):
        parse_document("json", b'{"unclosed": ')


def test_markdown_heading_paths_and_tables_kept_verbatim() -> None:
    data = (b"# Benefits\n\n## Leave\n\nYou get **25** days.\n\n"
            b"| Type | *Days* |\n|:--|--:|\n| Annual | 25 |\nAfter the table.\n\n"
            b"Pay\n---\n\nMonthly.\n\n# Other\n\nText.\n")
    parsed = parse_document("markdown", data)
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Benefits > Leave", "Benefits\n\nLeave\n\nYou get 25 days.\n\n"
                             "| Type | *Days* |\n|:--|--:|\n| Annual | 25 |\n\nAfter the table."),
        ("Benefits > Pay", "Pay\n\nMonthly."),
        ("Other", "Other\n\nText."),
    ]


def test_html_heading_paths_and_tables_as_markdown() -> None:
    page = (b"<html><body><p>Intro.</p><h1>Benefits</h1><h2>Leave</h2><p>Paid leave.</p>"
            b"<table><caption>Days</caption><thead><tr><th>Type</th><th>Days</th></tr></thead>"
            b"<tr><td>Annual</td><td>25</td></tr><tr><td>Sick</td><td>10</td></tr></table>"
            b"<h2>Pay</h2><p>Monthly.</p></body></html>")
    parsed = parse_document("html", page)
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("", "Intro."),
        ("Benefits > Leave", "Benefits\n\nLeave\n\nPaid leave.\n\nDays\n\n" + LEAVE_MARKDOWN),
        ("Benefits > Pay", "Pay\n\nMonthly."),
    ]


@pytest.mark.parametrize("kind", ["docx", "pptx", "xlsx"])
def test_a_damaged_office_file_is_a_parse_error_naming_its_kind(kind: str) -> None:
    data = {"docx": docx_bytes, "pptx": pptx_bytes, "xlsx": xlsx_bytes}[kind]()
    with pytest.raises(ParseError, match=f"could not parse {kind.upper()}"):
        parse_document(kind, data[: len(data) // 2])
    with pytest.raises(ParseError, match=f"could not parse {kind.upper()}"):
        parse_document(kind, zip_bytes({"word/document.xml": b"<not-ooxml/>"}))


def test_the_bytes_decide_when_the_declared_kind_is_wrong() -> None:
    parsed = parse_document("text", docx_bytes())  # e.g. a .docx saved as notes.txt
    assert any(s.heading == "Benefits > Leave" for s in parsed.sections)
