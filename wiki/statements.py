"""Writes whose results nobody reads, sent together: one round trip on PostgreSQL.

A record post ends with several such writes (its chain entries and the chain head's
move, its search entry, its metrics as rows, the project's records version). On
PostgreSQL they go as one statement, each but the last a data-modifying WITH clause
(they all run, once, on the same snapshot: none may read what another writes); on
other databases, one after the other. Either way they run in the caller's transaction.
"""

import io

from django.db import connection

# Parameters per statement at most: SQLite takes 32,766, PostgreSQL 65,535.
MAX_PARAMS = 30_000


def insert(model, names, rows):
    """[(SQL, params)] of multi-row INSERTs of ``rows`` (dicts of field name -> value)
    into ``model``'s table, values prepared as the ORM prepares them: one statement, or
    more when they hold more than MAX_PARAMS values."""
    fields = list(zip(names, [model._meta.get_field(name) for name in names], strict=True))
    prepared = [
        [field.get_db_prep_save(values[name], connection) for name, field in fields]
        for values in rows
    ]
    return list(_inserts(model, names, prepared))


def _inserts(model, names, rows):
    """(SQL, params) of the multi-row INSERTs of ``rows`` (values ready for the database,
    in the order of ``names``), at most MAX_PARAMS values each."""
    table, columns = _target(model, names)
    row = f"({', '.join(['%s'] * len(names))})"
    per_statement = max(1, MAX_PARAMS // len(names))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}"  # noqa: S608
        yield sql, [value for values in chunk for value in values]


def _target(model, names):
    """``model``'s table and the columns of ``names``, quoted."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in names)
    return quote(model._meta.db_table), columns


def copy(model, names, rows):
    """Insert ``rows`` (tuples of numbers, strings and None, in the order of ``names``,
    columns of ``model`` that need no conversion) in the caller's transaction: with COPY
    on PostgreSQL, which the server writes in half the time of the same rows as
    INSERT … VALUES (bench/README.md, issue 13), else with multi-row INSERTs."""
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for sql, params in _inserts(model, names, rows):
                cursor.execute(sql, params)
            return
        table, columns = _target(model, names)
        text = "".join("\t".join(map(_copy_text, row)) + "\n" for row in rows)
        # Django's cursor passes copy_expert through unwrapped: its errors are made
        # Django's (DatabaseError) here, as those of execute() are.
        with connection.wrap_database_errors:
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO(text))


# COPY's text format: a backslash escapes these, and \N is NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value):
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return repr(value)  # a float's repr reads back as the same float


class Statements:
    """Statements to send together with ``send()``: each (SQL, params) given to ``add``,
    or the INSERTs of ``insert``."""

    def __init__(self):
        self.pending = []

    def add(self, sql, params):
        self.pending.append((sql, list(params)))

    def insert(self, model, names, rows):
        for sql, params in insert(model, names, rows):
            self.add(sql, params)

    def send(self):
        pending, self.pending = self.pending, []
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                for sql, params in pending:
                    cursor.execute(sql, params)
                return
            for group in _groups(pending):
                *first, (last, last_params) = group
                clauses = ", ".join(f"w{n} AS ({sql})" for n, (sql, _) in enumerate(first))
                params = [param for _, clause_params in first for param in clause_params]
                cursor.execute(f"WITH {clauses} {last}" if first else last, params + last_params)


def _groups(pending):
    """``pending`` cut into runs of statements of at most MAX_PARAMS parameters together
    (a longer statement alone), in order."""
    groups, size = [], 0
    for statement in pending:
        if not groups or size + len(statement[1]) > MAX_PARAMS:
            groups.append([])
            size = 0
        groups[-1].append(statement)
        size += len(statement[1])
    return groups
