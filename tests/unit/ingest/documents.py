"""Documents of every binary kind, generated with the same libraries users make them with."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import docx
import openpyxl
from pptx import Presentation
from pptx.util import Inches
from reportlab.pdfgen import canvas

LEAVE_TABLE = [("Type", "Days"), ("Annual", "25"), ("Sick", "10")]


def pdf_bytes(pages: Sequence[str], title: str | None = None, encrypt: object = None) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, encrypt=encrypt)
    if title:
        pdf.setTitle(title)
    for text in pages:
        if text:
            pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def docx_bytes() -> bytes:
    """A handbook: title, "Benefits" > "Leave" with a table, then "Pay"."""
    document = docx.Document()
    document.add_heading("Staff Handbook", 0)
    document.add_paragraph("Welcome to the company.")
    document.add_heading("Benefits", 1)
    document.add_paragraph("We offer generous benefits.")
    document.add_heading("Leave", 2)
    document.add_paragraph("Everyone gets paid leave every year.")
    table = document.add_table(rows=len(LEAVE_TABLE), cols=2)
    for r, row in enumerate(LEAVE_TABLE):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_heading("Pay", 1)
    document.add_paragraph("Salaries are paid monthly.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes(slides: int = 2) -> bytes:
    """Slide 1 "Roadmap" with a bullet; slide 2 "Numbers" with a table and notes; more blank."""
    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Roadmap"
    first.placeholders[1].text = "Ship the new file formats in March."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Numbers"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "Quarter", (0, 1): "Revenue", (1, 0): "Q3",
                         (1, 1): "12 million"}.items():
        table.cell(r, c).text = text
    second.notes_slide.notes_text_frame.text = "Mention the record quarter."
    for number in range(3, slides + 1):
        deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = f"Slide {number}"
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def xlsx_bytes(rows: int = 3) -> bytes:
    """Sheet "Staff" (name, start year, a blank row skipped) and sheet "Offices"."""
    book = openpyxl.Workbook()
    staff = book.active
    staff.title = "Staff"
    staff.append(["Name", "Start year"])
    for i in range(rows):
        staff.append([f"Person {i}", 2000 + i])
    staff.append([])
    staff.append(["Pipe | name", None])
    offices = book.create_sheet("Offices")
    offices.append(["City", "Desks"])
    offices.append(["Oslo", 40])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def with_member(document: bytes, name: str, data: bytes) -> bytes:
    """The OOXML package with one more (highly compressible) member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(document)) as source, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr(name, data)
    return buffer.getvalue()
