"""Hostile files made on the fly: zip bombs (honest or lying sizes) and PDFs with too
many pages, for tests/e2e/test_hostile_files.py and benchmarks/hostile_files.py."""

from __future__ import annotations

import io
import struct
import zipfile

BOMB_MB = 300
_TYPES = {
    "docx": ("word/document.xml", "wordprocessingml.document.main+xml"),
    "xlsx": ("xl/workbook.xml", "spreadsheetml.sheet.main+xml"),
}


def zip_bomb(kind: str, lie: bool) -> bytes:
    """An OOXML package with BOMB_MB of zeros in one member; `lie`: its declared size
    says 1 KiB (patched in both headers), so only inflating can find the truth."""
    part, main = _TYPES[kind]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/'
            '2006/content-types"><Override PartName="/' + part + '" ContentType="application/'
            'vnd.openxmlformats-officedocument.' + main + '"/></Types>'))
        archive.writestr(part, "<x/>")
        with archive.open("zeros.bin", "w", force_zip64=False) as member:
            chunk = bytes(1 << 20)
            for _ in range(BOMB_MB):
                member.write(chunk)
    data = bytearray(out.getvalue())
    if lie:
        real = struct.pack("<I", BOMB_MB << 20)
        for at in _offsets(data, real):
            data[at:at + 4] = struct.pack("<I", 1024)
    return bytes(data)


def _offsets(data: bytearray, needle: bytes) -> list[int]:
    found, at = [], data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


def pdf_pages(pages: int, claimed: int | None = None) -> bytes:
    """A valid PDF of `pages` empty pages whose page tree claims `claimed` pages."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    count = claimed if claimed is not None else pages
    objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count))
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>"] * pages
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)
