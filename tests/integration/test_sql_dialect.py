"""`pg_array_literal` against a real PostgreSQL: what goes in as array text comes back unchanged."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from modelyard.store.sql.dialect import pg_array_literal
from modelyard.store.sql.engine import create_engine_for

pytestmark = pytest.mark.postgres

CASES = [
    (str, ['say "hi"', "back\\slash\\", "{a,b}", "NULL", "", " padded ", "日本語", None, "'"], "text[]"),
    (int, [0, -1, -(2**63), 2**63 - 1, None], "bigint[]"),
    (float, [0.1, 5e-324, -1.7976931348623157e308, math.inf, -math.inf, 3, -0.0, None], "float8[]"),
    (bool, [True, False, None], "boolean[]"),
    (str, [], "text[]"),
]


@pytest.mark.parametrize(("element_type", "values", "sql_type"), CASES)
def test_array_text_round_trips(postgres_uri: str, element_type: type, values: list, sql_type: str) -> None:
    engine = create_engine_for(postgres_uri)
    try:
        with engine.connect() as conn:
            back = conn.execute(
                text(f"SELECT CAST(:a AS {sql_type})"), {"a": pg_array_literal(values, element_type)}
            ).scalar_one()
    finally:
        engine.dispose()
    assert back == values
    if element_type is float:
        assert [math.copysign(1, v) for v in back if v is not None] == [
            math.copysign(1, v) for v in values if v is not None
        ]


def test_nan_is_spelled_as_postgresql_reads_it(postgres_uri: str) -> None:
    engine = create_engine_for(postgres_uri)
    try:
        with engine.connect() as conn:
            back = conn.execute(
                text("SELECT CAST(:a AS float8[])"), {"a": pg_array_literal([math.nan], float)}
            ).scalar_one()
    finally:
        engine.dispose()
    assert math.isnan(back[0])


def test_other_element_types_are_refused() -> None:
    with pytest.raises(TypeError):
        pg_array_literal([b"x"], bytes)
