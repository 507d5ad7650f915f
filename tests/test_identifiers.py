"""One identifier rule: every org or user id Python accepts, the schema's CHECK accepts too,
so no id passes validation and then fails in Postgres (an answer of 500 instead of 422)."""

from __future__ import annotations

import pytest

from tenantgraph.scope import InvalidIdentifier, validate_identifier

from .store_support import admin_execute

SURROGATES = range(0xD800, 0xE000)  # not encodable in UTF-8: Postgres never sees them


def _python_rejects(codepoint: int) -> bool:
    try:
        validate_identifier("a" + chr(codepoint))
    except InvalidIdentifier:
        return True
    return False


async def test_python_is_never_looser_than_the_schema(resources) -> None:
    rows = await admin_execute(
        resources,
        "SELECT cp FROM generate_series(1, 1114111) cp"
        " WHERE (cp < 55296 OR cp > 57343) AND NOT tenantgraph.is_valid_identifier('a' || chr(cp))",
    )
    schema_rejects = {cp for (cp,) in rows}
    assert 0x85 in schema_rejects and 0x9F in schema_rejects  # C1 controls: the 500s of old
    python_rejects = {cp for cp in range(1, 0x110000) if _python_rejects(cp)}
    assert schema_rejects - python_rejects == set()
    assert set(SURROGATES) <= python_rejects


@pytest.mark.parametrize("bad", ["a\x80b", "a\x9fb", "a\ud800b", "a b", "a{b", "a.b", ""])
def test_unstorable_ids_are_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_identifier(bad)


@pytest.mark.parametrize("good", ["acme", "auth0|5f1c", "svc:ci", "ünïcödé", "a" * 128])
def test_ordinary_ids_pass(good: str) -> None:
    assert validate_identifier(good) == good
