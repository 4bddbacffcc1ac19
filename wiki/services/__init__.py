"""The one write path: every change to the domain goes through these functions.

Each opens a transaction, checks the revision the caller started from (where there is
one), validates, saves, and records who / why / from where (wiki.history.recording).
They assume the caller may act (the browser and the API check rights first, with
wiki.access.project_for) and enforce the domain's own rules: four eyes on approvals, the
last maintainer, conflicts.
"""


class EditConflict(Exception):
    """The object changed after the caller read it; ``current`` is its latest state."""

    def __init__(self, current):
        super().__init__(
            f"{current} was changed meanwhile (it is now at revision {current.revision})."
        )
        self.current = current
