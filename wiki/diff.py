"""What changed between two states of a page: field by field, line by line, and word by
word inside a changed line.

Only content is compared (title, structured fields, body): timestamps, revision numbers
and review state are left out. Values are returned as plain text; whoever shows them
escapes them (templates do by default, JSON needs nothing).
"""

import difflib
import re
from dataclasses import dataclass
from itertools import zip_longest


@dataclass
class Change:
    name: str
    label: str
    changed: bool
    old: str
    new: str
    # Side by side: one dict per line pair, op "equal", "delete", "insert" or "replace";
    # a "replace" pair also has "old_words" and "new_words" (see word_diff).
    lines: list


# A word, a run of spaces, or one other character: what a reader sees change in a line.
TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def as_text(value, kind=None):
    """A field value as the lines a person reads (a table as "key: value" lines)."""
    if value in (None, "", []):
        return ""
    if isinstance(value, list):  # a table, whatever its field is now (kinds can change)
        return "\n".join(f"{row['key']}: {row['value']}" for row in value)
    return str(value)


# Comparing words costs the product of the two lines' lengths in tokens: past this many,
# for one text, the remaining changed lines are marked whole (a page is a GET; a long
# one-line paragraph must not cost a worker seconds).
WORD_DIFF_BUDGET = 1_000_000


def word_diff(old, new):
    """Two lines as (text, changed) pieces each, so that what changed inside them can be
    marked: ``("Predict churn", False), (" monthly", True), (".", False)`` and so on."""
    return _word_diff(TOKEN.findall(old), TOKEN.findall(new))


def _word_diff(a, b):
    sides = ([], [])
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        for pieces, text in zip(sides, ("".join(a[i1:i2]), "".join(b[j1:j2])), strict=True):
            changed = op != "equal"
            if not text:
                continue
            if pieces and pieces[-1][1] == changed:  # one piece per run, not per word
                text = pieces.pop()[0] + text
            pieces.append((text, changed))
    return sides


def line_diff(old, new, words=True):
    """Line pairs of two texts, side by side, with the changed words of a changed line
    (while WORD_DIFF_BUDGET lasts; none with ``words`` false)."""
    a, b = old.splitlines(), new.splitlines()
    rows = []
    budget = WORD_DIFF_BUDGET if words else 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        for left, right in zip_longest(a[i1:i2], b[j1:j2]):
            row = {"op": op, "old": left, "new": right}
            if op == "replace" and left is not None and right is not None and budget > 0:
                old_tokens, new_tokens = TOKEN.findall(left), TOKEN.findall(right)
                cost = len(old_tokens) * len(new_tokens)
                if cost <= budget:
                    budget -= cost
                    row["old_words"], row["new_words"] = _word_diff(old_tokens, new_tokens)
            rows.append(row)
    return rows


def compare(spec, old, new, words=True):
    """Changes from ``old`` to ``new`` ({"title", "fields", "body"} each) of a page whose
    category is ``spec`` (None for a free page), in the order a reader meets them; with
    ``words``, the changed words of changed lines are marked too."""
    parts = [("title", "Title", old["title"], new["title"], None)]
    for field in spec.fields_for(old["fields"], new["fields"]) if spec else ():
        parts.append(
            (
                field.name,
                field.label,
                old["fields"].get(field.name),
                new["fields"].get(field.name),
                field.kind,
            )
        )
    parts.append(("body", "Body", old["body"], new["body"], None))
    changes = []
    for name, label, before, after, kind in parts:
        before, after = as_text(before, kind), as_text(after, kind)
        changes.append(
            Change(name, label, before != after, before, after, line_diff(before, after, words))
        )
    return changes


def content(row):
    """The comparable content of a page or of one of its history rows."""
    return {"title": row.title, "fields": row.fields, "body": row.body}
