"""The bytes of attachments: what a file is (decided from its content), its clean name,
storing it under its SHA-256, thumbnails, and checking that stored bytes still match the
hash the audit chain sealed. Writes of Attachment rows are in wiki.services.attachments.
"""

import base64
import csv
import hashlib
import json
import os
import re
import tempfile
import unicodedata
import warnings

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponseNotModified
from PIL import Image, ImageOps, UnidentifiedImageError

from wiki.models.attachments import storage_name
from wiki.storage import answering

# The types an attachment may have, with the extension its name gets.
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/svg+xml": ".svg",
    "application/pdf": ".pdf",
    "text/csv": ".csv",
    "application/json": ".json",
    "text/plain": ".txt",
    "text/html": ".html",
}
# Extensions a name may keep for its type (others are replaced by the type's own).
KEPT_EXTENSIONS = {
    "image/jpeg": {".jpeg"},
    "text/html": {".htm"},
    "text/plain": {".log", ".md", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".tsv", ".py", ".sql"},
}
RASTER = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
# Bytes of a file read to decide its type (the rest is read only for text files).
HEAD = 8192
CHUNK = 1024 * 1024
NAME_MAX_LENGTH = 100
# Images with more pixels than this are refused: decoding one would take gigabytes.
MAX_PIXELS = 50_000_000
THUMBNAIL_SIZE = 320


def _signature(head):
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


# Control characters no text file holds (tab, newlines and form feed aside): binary.
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _text(file):
    """The whole file as text, or None if it is not UTF-8 text."""
    file.seek(0)
    data = file.read()
    if _BINARY.search(data):
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


# Markup at the start of a text file: an XML declaration, comments, a doctype.
_PROLOGUE = re.compile(r"\A\s*(?:<\?xml[^>]*\?>\s*|<!--.*?-->\s*|<!doctype[^>]*>\s*)*", re.I | re.S)


def _text_type(text):
    start = text.lstrip()
    if start.startswith("<"):
        # Markup: SVG when its root element is <svg>, else HTML (served sandboxed, as
        # HTML is, whatever else it may be).
        body = text[_PROLOGUE.match(text).end() :]
        return "image/svg+xml" if re.match(r"<svg[\s>/]", body, re.I) else "text/html"
    if start[:1] in ("{", "["):
        try:
            json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
            pass
        else:
            return "application/json"
    lines = [line for line in text[:HEAD].splitlines()[:20] if line.strip()]
    if len(lines) >= 2:
        try:
            dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t")
        except csv.Error:
            dialect = None
        if dialect is not None:
            widths = {len(row) for row in csv.reader(lines, dialect)}
            if len(widths) == 1 and widths.pop() > 1:
                return "text/csv"
    return "text/plain"


def sniff(file):
    """The content type of ``file`` (a binary file object), decided from its bytes; a
    ValidationError names what is accepted when it is none of those."""
    file.seek(0)
    head = file.read(HEAD)
    content_type = _signature(head)
    if content_type in RASTER:
        _check_image(file, content_type)
    if content_type is None:
        text = _text(file)
        if text is not None:
            content_type = _text_type(text)
    file.seek(0)
    if content_type is None:
        raise NotAccepted
    return content_type


class NotAccepted(ValidationError):
    """A file of a type attachments may not have (the API answers 415, not 400)."""

    def __init__(self):
        super().__init__(
            {"file": "This type of file is not accepted. Attach an image (PNG, JPEG, GIF, "
             "WebP, SVG), a PDF, CSV, JSON, plain text or an HTML report."}
        )  # fmt: skip


def _check_image(file, content_type):
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                if image.format != RASTER[content_type]:
                    raise UnidentifiedImageError
                if image.width * image.height > MAX_PIXELS:
                    raise Image.DecompressionBombError
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(
            {"file": f"The image has more than {MAX_PIXELS:,} pixels; scale it down."}
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError({"file": "The image is damaged: it cannot be read."}) from None


def clean_name(name, content_type):
    """A safe name for an attachment: no path, ASCII letters, digits, ``.``, ``_`` and
    ``-`` only, at most NAME_MAX_LENGTH characters, with the extension of its type (a
    name does not get to claim another)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    stem, extension = os.path.splitext(base)
    extension = extension.lower()
    if extension not in KEPT_EXTENSIONS.get(content_type, ()):
        extension = EXTENSIONS[content_type]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_") or "file"
    return stem[: NAME_MAX_LENGTH - len(extension)] + extension


def limit_text():
    """ATTACHMENT_MAX_BYTES for people: "25 MB", "0.5 MB"."""
    return f"{settings.ATTACHMENT_MAX_BYTES / (1024 * 1024):.3g} MB"


class TooLarge(ValidationError):
    def __init__(self):
        super().__init__({"file": f"The file is over the limit of {limit_text()}."})


def digest(file):
    """(SHA-256, size) of ``file``, read in chunks; TooLarge past ATTACHMENT_MAX_BYTES."""
    file.seek(0)
    found = _hash(file, settings.ATTACHMENT_MAX_BYTES)
    file.seek(0)
    return found


def store(file, sha256):
    """Put ``file``'s bytes in the storage under their hash (once: the same bytes are
    stored once however often they are attached). wiki.storage.Unavailable when the
    storage does not answer."""
    file.seek(0)
    _save_once(storage_name(sha256), file)


def _save_once(name, file):
    """Save ``file`` as ``name`` unless the storage has it already. What is stored under a
    name never changes (a hash names it), so a copy saved at the same moment by another
    process, which the storage gives another name, is deleted again."""
    with answering():
        if default_storage.exists(name):
            return
        saved = default_storage.save(name, File(file, name=name))
        if saved != name:
            default_storage.delete(saved)


def open_stored(sha256):
    """The stored bytes of ``sha256``, open for reading (FileNotFoundError if missing)."""
    with answering():
        return default_storage.open(storage_name(sha256), "rb")


MISSING = "missing from the storage"


def check_stored(sha256):
    """None if the stored bytes still hash to ``sha256``, else what is wrong (MISSING,
    or that they changed)."""
    try:
        with open_stored(sha256) as file:
            actual, _ = _hash(file)
    except FileNotFoundError:
        return MISSING
    return None if actual == sha256 else f"its bytes changed (they now hash to {actual})"


def _hash(file, limit=None):
    """(SHA-256, size) of the rest of ``file``, read in chunks; TooLarge past ``limit``."""
    sha, size = hashlib.sha256(), 0
    while chunk := file.read(CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            raise TooLarge
        sha.update(chunk)
    return sha.hexdigest(), size


def thumbnail_name(sha256, size=THUMBNAIL_SIZE):
    return f"thumbnails/{sha256[:2]}/{sha256}-{size}.png"


def thumbnail(sha256, size=THUMBNAIL_SIZE):
    """The storage name of a PNG at most ``size`` pixels wide and high of the raster
    image ``sha256``, made the first time it is asked for and kept (the same bytes
    always give the same thumbnail)."""
    name = thumbnail_name(sha256, size)
    with answering():
        if default_storage.exists(name):
            return name
    with open_stored(sha256) as file, Image.open(file) as image:
        image.seek(0)  # an animation's first frame
        image = ImageOps.exif_transpose(image)  # a camera's "rotate 90°" applied, as browsers do
        image.thumbnail((size, size))
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA")
        with tempfile.SpooledTemporaryFile(max_size=CHUNK) as out:
            image.save(out, "PNG", optimize=True)
            out.seek(0)
            _save_once(name, out)
    return name


def data_uri(sha256, content_type):
    """The stored bytes as a data: URI (self-contained HTML and PDF exports)."""
    with open_stored(sha256) as file:
        return f"data:{content_type};base64,{base64.b64encode(file.read()).decode()}"


# Served files never run as documents of the app's origin: SVG and HTML (which can hold
# scripts) and everything else but PDF get a sandbox, a unique origin with no scripts.
# Chromium will not show a PDF in a sandbox; its viewer runs apart from the page anyway.
SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def serve(sha256, content_type, name, *, download=False):
    """A response streaming the stored bytes of ``sha256`` (after the caller's
    permission check): ``X-Content-Type-Options: nosniff``, the sandbox policy, inline
    unless ``download``, ``ETag`` the hash (the bytes behind a hash never change).
    FileNotFoundError or wiki.storage.Unavailable are the caller's to answer."""
    response = FileResponse(
        open_stored(sha256), as_attachment=download, filename=name, content_type=content_type
    )
    return _guarded(response, content_type, sha256)


def thumbnail_tag(sha256):
    """The ETag (without quotes) of the thumbnail of ``sha256``."""
    return f"{sha256}-{THUMBNAIL_SIZE}"


def serve_thumbnail(sha256):
    """A response with the PNG thumbnail of the raster image ``sha256`` (made the first
    time it is asked for), with ``serve``'s headers and ``thumbnail_tag`` as ETag."""
    name = thumbnail(sha256)
    with answering():
        handle = default_storage.open(name, "rb")
    return _guarded(
        FileResponse(handle, content_type="image/png"), "image/png", thumbnail_tag(sha256)
    )


def _guarded(response, content_type, tag):
    response["X-Content-Type-Options"] = "nosniff"
    if content_type != "application/pdf":
        response["Content-Security-Policy"] = SANDBOX
    response["ETag"] = f'"{tag}"'
    response["Cache-Control"] = "private, no-cache"
    return response


def not_modified(request, sha256):
    """A 304 if the client holds these bytes already (If-None-Match), else None."""
    if f'"{sha256}"' in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
        response["ETag"] = f'"{sha256}"'
        return response
    return None
