"""Context properties (hotel, agent, job) as text, the same in Python and in SQL."""

import re

from sqlalchemy import String
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import literal

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NAME_RULE = "letters, digits, _ and -, up to 64"


def text(value) -> str | None:
    """A property value as the text both databases give for it; None when absent."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def sql_text(column, name: str, dialect: str):
    """SQL for the text of one property of a JSON column, NULL when absent."""
    if not NAME.match(name):
        raise ValueError(f"Property names use {NAME_RULE}.")
    if dialect == "postgresql":
        return column.op("->>")(literal(name, String))
    path = literal(f'$."{name}"', String)
    kind = func.json_type(column, path)
    return case(
        (kind == "true", literal("true")),
        (kind == "false", literal("false")),
        # A number as written in the JSON, as Python prints it: json_extract would
        # make it a REAL and print 1e+20 as 1.0e+20.
        (kind.in_(("integer", "real")), column.op("->", return_type=String)(path)),
        else_=cast(func.json_extract(column, path), String),
    )
