"""House rules read from the source with `ast`: SQL against the hub's store is written only under
`hub/store/`, so every statement has a name (a store method) and both dialects are in one place.

A string is SQL when it (or an f-string's text, with `?` for each placeholder) starts with a
statement, in any case: SELECT ... FROM (or SELECT x AS), INSERT INTO, UPDATE ... SET, DELETE FROM,
WITH ... AS, CREATE/ALTER/DROP of a table, index, view or trigger; or, in capitals, PRAGMA or
transaction control (BEGIN, COMMIT, ROLLBACK [TO], SAVEPOINT, RELEASE). Docstrings are prose, not
statements, and are skipped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"
STORE = HUB / "store"
# SQL that is not the hub's store's. Allowed by file, each with its reason.
NOT_THE_STORE = {
    # Reconciliation compares two files in DuckDB, on tables of its own in a scratch database
    # (staged lines, held records, the diff); it never touches the hub's store.
    "hub/recon/staging.py",
}
_SQL = re.compile(
    r"""\s*(
        SELECT\b.*\bFROM\b
        | SELECT\s+\S+\s+AS\b
        | INSERT\s+INTO\b
        | UPDATE\s+\S+\s+SET\b
        | DELETE\s+FROM\b
        | WITH\s+(RECURSIVE\s+)?\S+\s+AS\b
        | (CREATE|ALTER|DROP)\s+(OR\s+REPLACE\s+|UNIQUE\s+|TEMP\w*\s+)*(TABLE|INDEX|VIEW|TRIGGER)\b
        | (?-i:PRAGMA\s)
        | (?-i:(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b[A-Z_a-z ]*$)  # in capitals: "Commit failed" is prose
    )""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)


def _text(node: ast.AST) -> str | None:
    """The text of a string constant, or of an f-string with `?` for each placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "?" for v in node.values)
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that stand alone as statements (docstrings and the like)."""
    return {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}


def sql_literals(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every SQL string in `source`; an f-string counts once, not once per part."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        text = _text(node)
        if text is not None and id(node) not in prose | parts and _SQL.match(text):
            yield node.lineno, text


def _hub_sql() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(HUB.rglob("*.py")):
        if STORE in path.parents:
            continue
        hits = [f"{line}: {text.strip()[:70]}" for line, text in sql_literals(path.read_text(encoding="utf-8"))]
        if hits:
            found[path.relative_to(ROOT).as_posix()] = hits
    return found


def test_sql_against_the_store_is_written_only_under_hub_store() -> None:
    stray = {file: hits for file, hits in _hub_sql().items() if file not in NOT_THE_STORE}
    assert not stray, "SQL outside hub/store/ (give it a store method instead):\n" + "\n".join(
        f"  {file}:{hit}" for file, hits in stray.items() for hit in hits
    )


def test_the_rule_sees_sql_in_plain_strings_f_strings_and_lowercase_but_not_in_prose() -> None:
    source = '''
"""Select the cases from the list: a docstring, not a statement."""
a = "SELECT * FROM cases WHERE case_id=?"
b = f"UPDATE {table} SET {column}=? WHERE {key}=?"
c = "  delete from inbox where received_at < ?"
d = ("INSERT INTO audit_log (seq) "
     "VALUES (?)")
e = f"{_LIST} WHERE c.case_id=?"
f = "create one least-privilege broker user per party"
g = "SAVEPOINT message"
h = "update the agreement, then set its sync state"
i = "Commit failed"
j = "ROLLBACK TO SAVEPOINT message"
k = "SELECT 1 AS one"
'''
    assert [line for line, _ in sql_literals(source)] == [3, 4, 5, 6, 10, 13, 14]
