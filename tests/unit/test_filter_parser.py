"""The filter language: parsing, per-search rules, order_by, and the LIKE -> GLOB translation."""

from __future__ import annotations

import pytest

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.store.search import (
    EXPERIMENTS,
    RUNS,
    And,
    Comparison,
    FilterSyntaxError,
    Or,
    OrderBy,
    iter_comparisons,
    parse_filter,
)
from modelyard.store.search.kinds import RUN_ENTITIES
from modelyard.store.search.limits import SearchLimits
from modelyard.store.search.sql_ops import check_like_pattern, like_to_glob


def parse(text: str):
    return parse_filter(text, RUN_ENTITIES, "attribute")


def cmp(entity: str, key: str, op: str, value: object, position: int = 0) -> Comparison:
    return Comparison(entity, key, op, value, position)  # type: ignore[arg-type]


def error_of(text: str, kind=None) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as info:
        (kind.parse_filter if kind else parse)(text)
    err = info.value
    assert err.error_code == errors.INVALID_PARAMETER_VALUE
    assert err.http_status == 400
    assert text in err.message
    return err


# ---- valid filters ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_filter_matches_everything(text: str | None) -> None:
    assert parse(text) is None  # type: ignore[arg-type]
    assert RUNS.parse_filter(text) is None


@pytest.mark.parametrize(
    ("prefix", "entity"),
    [
        ("metrics", "metric"),
        ("metric", "metric"),
        ("params", "param"),
        ("param", "param"),
        ("parameter", "param"),
        ("parameters", "param"),
        ("tags", "tag"),
        ("tag", "tag"),
        ("attributes", "attribute"),
        ("attribute", "attribute"),
        ("attr", "attribute"),
        ("run", "attribute"),
        ("METRICS", "metric"),
    ],
)
def test_entity_prefixes_and_aliases(prefix: str, entity: str) -> None:
    node = parse(f"{prefix}.k = 'v'")
    assert node == cmp(entity, "k", "=", "v")


def test_unprefixed_identifier_is_an_attribute() -> None:
    assert parse("status = 'FINISHED'") == cmp("attribute", "status", "=", "FINISHED")


def test_key_keeps_every_dot_after_the_entity() -> None:
    assert parse("tags.mlflow.source.type = 'LOCAL'") == cmp("tag", "mlflow.source.type", "=", "LOCAL")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('metrics."my metric" > 1', "my metric"),
        ("metrics.`my metric` > 1", "my metric"),
        ("metrics.'my metric' > 1", "my metric"),
        ('metrics."a.b-c" > 1', "a.b-c"),
        ('metrics.`with "double"` > 1', 'with "double"'),
        ('metrics."it""s" > 1', 'it"s'),
        ("metrics.1st > 1", "1st"),
        ("`metrics`.acc > 1", "acc"),
        ('"metrics"."a b" > 1', "a b"),
    ],
)
def test_quoted_keys(text: str, key: str) -> None:
    assert parse(text) == cmp("metric", key, ">", 1)


def test_quoted_unprefixed_identifier_is_an_attribute_with_spaces() -> None:
    assert parse("`Run name` = 'x'") == cmp("attribute", "Run name", "=", "x")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1),
        ("-1", -1),
        ("+2", 2),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("-2.5E-2", -0.025),
        ("- 3", -3),
        ("12345678901234567890", 12345678901234567890),
    ],
)
def test_numbers(literal: str, value: float) -> None:
    node = parse(f"metrics.m >= {literal}")
    assert isinstance(node, Comparison)
    assert node.value == value
    assert type(node.value) is type(value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'abc'", "abc"),
        ('"abc"', "abc"),
        ("''", ""),
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a\"b'", 'a"b'),
        ("'100\\%'", "100\\%"),
        ("'C:\\\\path'", "C:\\\\path"),
        ("'ünïcødé ✓'", "ünïcødé ✓"),
        ("'and or ( ) = '", "and or ( ) = "),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert parse(f"params.p = {literal}") == cmp("param", "p", "=", value)


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_symbol_comparators(op: str) -> None:
    assert parse(f"metrics.m {op} 1") == cmp("metric", "m", op, 1)
    assert parse(f"metrics.m{op}1") == cmp("metric", "m", op, 1)


@pytest.mark.parametrize(("written", "op"), [("like", "LIKE"), ("LiKe", "LIKE"), ("ilike", "ILIKE")])
def test_keyword_comparators_are_case_insensitive(written: str, op: str) -> None:
    assert parse(f"tags.t {written} 'a%'") == cmp("tag", "t", op, "a%")


def test_in_and_not_in_lists() -> None:
    assert parse("run_id IN ('a', \"b\")") == cmp("attribute", "run_id", "IN", ("a", "b"))
    assert parse("params.p not in ('x')") == cmp("param", "p", "NOT IN", ("x",))
    assert parse("metrics.m IN (1, -2.5)") == cmp("metric", "m", "IN", (1, -2.5))


def test_is_null_and_is_not_null() -> None:
    assert parse("tags.t IS NULL") == cmp("tag", "t", "IS NULL", None)
    assert parse("params.p is not null") == cmp("param", "p", "IS NOT NULL", None)


def test_and_binds_tighter_than_or() -> None:
    node = parse("metrics.a > 1 OR metrics.b > 2 AND metrics.c > 3")
    assert isinstance(node, Or)
    first, second = node.children
    assert first == cmp("metric", "a", ">", 1)
    assert isinstance(second, And)
    assert [c.key for c in iter_comparisons(second)] == ["b", "c"]


def test_parentheses_override_precedence() -> None:
    node = parse("(metrics.a > 1 OR metrics.b > 2) AND metrics.c > 3")
    assert isinstance(node, And)
    assert isinstance(node.children[0], Or)
    assert node.children[1] == cmp("metric", "c", ">", 3, 37)


def test_chains_are_flattened_and_positions_recorded() -> None:
    text = "metrics.a > 1 and params.b = 'x' AND tags.c != 'y'"
    node = parse(text)
    assert isinstance(node, And)
    assert len(node.children) == 3
    assert [c.position for c in iter_comparisons(node)] == [0, 18, 37]
    assert (parse("((metrics.a > 1))")) == cmp("metric", "a", ">", 1, 2)


def test_sql_injection_is_just_a_string_value() -> None:
    node = parse("params.p = '\\' OR 1=1 --' AND tags.t = \"x'; DROP TABLE runs; --\"")
    assert node == And(
        (
            cmp("param", "p", "=", "' OR 1=1 --"),
            cmp("tag", "t", "=", "x'; DROP TABLE runs; --", 30),
        )
    )


def test_classic_injection_outside_quotes_is_a_syntax_error() -> None:
    err = error_of("params.p = '' OR 1=1 --'")
    assert "found keyword" not in err.message
    assert err.position == 17  # `1` cannot start an identifier


# ---- invalid filters: message names the problem and the position ------------------------------
@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ("metrics.acc >", "expected a quoted string or a number, found end of input", 13),
        ("metrics.acc", "expected a comparator", 11),
        ("foo.x = 1", "invalid entity type 'foo'", 0),
        ("params.x = abc", "string values need quotes", 11),
        ("(metrics.a > 1", "expected ')' to close the '(' at character 1", 14),
        ("metrics.a > 1)", "unbalanced ')'", 13),
        ("metrics.a == 1", "unknown comparator '=='", 10),
        ("metrics.a <> 1", "unknown comparator '<>'", 10),
        ("params.a = 'x", "unterminated quoted string", 11),
        ("params.a IN ()", "the list after IN is empty", 13),
        ("params.a IN 'x'", "expected '(' after IN", 12),
        ("params.a IN ('x'", "expected ')' to close the list after IN", 16),
        ("params.a NOT 'x'", "NOT is only supported as NOT IN and IS NOT NULL", 9),
        ("params.a IS 'x'", "expected NULL after IS", 12),
        ("params.a = NULL", "use IS NULL", 11),
        ("params.a = `x`", "backticks quote names, not values", 11),
        ("metrics. > 1", "expected a key after '.'", 9),
        ("metrics.a > 1; DROP TABLE runs", "unexpected character ';'", 13),
        ("metrics.a > 1 metrics.b > 2", "expected AND, OR or end of input", 14),
        ("metrics.a > 1 AND", "expected an identifier, found end of input", 17),
        ("AND metrics.a > 1", "found keyword 'AND'", 0),
        ("()", "empty parentheses", 1),
        ("metrics.my-metric > 1", "quote keys that contain special characters", 10),
        ("metrics.a > 1x", "invalid number", 12),
        ("'metrics.a' > 1", "expected an identifier", 0),
        ("metrics.a OR metrics.b", "expected a comparator", 10),
    ],
)
def test_syntax_errors_name_problem_and_position(text: str, problem: str, position: int) -> None:
    err = error_of(text)
    assert problem in err.message
    assert err.position == position
    assert f"(at character {position + 1})" in err.message


def test_unprefixed_identifiers_need_a_default_entity() -> None:
    with pytest.raises(FilterSyntaxError, match="needs an entity prefix"):
        parse_filter("name = 'x'", {"tags": "tag"}, None)


# ---- per-search rules (RUNS, EXPERIMENTS) -----------------------------------------------------
def test_runs_resolve_attribute_aliases() -> None:
    assert RUNS.parse_filter("created > 5") == cmp("attribute", "start_time", ">", 5)
    assert RUNS.parse_filter("`Run Name` = 'a'") == cmp("attribute", "run_name", "=", "a")
    assert RUNS.parse_filter("attributes.`run name` LIKE 'a%'") == cmp("attribute", "run_name", "LIKE", "a%")


def test_runs_metric_values_become_numbers_and_huge_ints_become_floats() -> None:
    assert RUNS.parse_filter("start_time > 99999999999999999999") == cmp("attribute", "start_time", ">", 1e20)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("metrics.m > '1'", "metric 'm' takes a numeric value, not the string '1'"),
        ("metrics.m LIKE '1%'", "comparator 'LIKE' is not supported for metric 'm'"),
        ("params.p = 1", "param 'p' takes a quoted string value"),
        ("params.p > 'a'", "comparator '>' is not supported for param 'p'"),
        ("tags.t IN ('a', 2)", "tag 't' takes a quoted string value, not 2"),
        ("attributes.nope = 'x'", "invalid attribute key 'nope'"),
        ("experiment_id = '1'", "invalid attribute key 'experiment_id'"),
        ("status IS NULL", "comparator 'IS NULL' is not supported for attribute 'status'"),
        ("start_time LIKE '1%'", "comparator 'LIKE' is not supported for attribute 'start_time'"),
        ("start_time > '2024'", "takes a numeric value"),
        ("status = 1", "attribute 'status' takes a quoted string value"),
        ("metrics.a > 1 OR run_id = 5", "attribute 'run_id' takes a quoted string value"),
        ("datasets.name = 'x'", "invalid entity type 'datasets'"),
    ],
)
def test_runs_rules(text: str, problem: str) -> None:
    assert problem in error_of(text, RUNS).message


def test_runs_rule_errors_point_at_the_offending_clause() -> None:
    err = error_of("metrics.a > 1 AND params.p = 1", RUNS)
    assert err.position == 18


def test_runs_accept_null_tests_on_params_tags_metrics_and_nullable_attributes() -> None:
    for text in ["params.p IS NULL", "tags.t IS NOT NULL", "metrics.m IS NULL", "end_time IS NULL"]:
        assert RUNS.parse_filter(text) is not None


def test_experiments_rules() -> None:
    assert EXPERIMENTS.parse_filter("name LIKE 'x%'") == cmp("attribute", "name", "LIKE", "x%")
    assert EXPERIMENTS.parse_filter("experiment_id IN ('1', 2)") == cmp(
        "attribute", "experiment_id", "IN", (1, 2)
    )
    assert EXPERIMENTS.parse_filter("tags.`a b` IS NULL") == cmp("tag", "a b", "IS NULL", None)
    assert "invalid entity type 'metrics'" in error_of("metrics.m > 1", EXPERIMENTS).message
    assert "takes an integer id" in error_of("experiment_id = 'abc'", EXPERIMENTS).message
    assert "not supported for attribute 'experiment_id'" in error_of("experiment_id > 1", EXPERIMENTS).message
    assert "invalid attribute key 'status'" in error_of("status = 'x'", EXPERIMENTS).message


# ---- order_by --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("metrics.rmse", OrderBy("metric", "rmse", True)),
        ("metrics.rmse DESC", OrderBy("metric", "rmse", False)),
        ("metrics.rmse asc", OrderBy("metric", "rmse", True)),
        ("params.`a b` DESC", OrderBy("param", "a b", False)),
        ('tags."mlflow.runName"', OrderBy("tag", "mlflow.runName", True)),
        ("tags.mlflow.runName desc", OrderBy("tag", "mlflow.runName", False)),
        ("start_time", OrderBy("attribute", "start_time", True)),
        ("attributes.created DESC", OrderBy("attribute", "start_time", False)),
        ("`Run name`", OrderBy("attribute", "run_name", True)),
        ("  run_id  ", OrderBy("attribute", "run_id", True)),
    ],
)
def test_order_by_clauses(clause: str, expected: OrderBy) -> None:
    assert RUNS.parse_order_by([clause]) == [expected]


@pytest.mark.parametrize(
    ("clauses", "problem"),
    [
        (["metrics.m DOWN"], "expected ASC, DESC or end of input"),
        (["metrics.m DESC ASC"], "expected ASC, DESC or end of input"),
        ([""], "empty order_by clause"),
        (["nope"], "invalid order_by attribute 'nope'"),
        (["foo.x"], "invalid entity type 'foo'"),
        (["metrics.m", "metrics.m DESC"], "names metric 'm' twice"),
        (["created", "start_time"], "names attribute 'start_time' twice"),
    ],
)
def test_order_by_errors(clauses: list[str], problem: str) -> None:
    with pytest.raises(ModelyardException) as info:
        RUNS.parse_order_by(clauses)
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE
    assert problem in info.value.message


def test_experiment_order_by_is_attributes_only() -> None:
    assert EXPERIMENTS.parse_order_by(["name DESC", "experiment_id"]) == [
        OrderBy("attribute", "name", False),
        OrderBy("attribute", "experiment_id", True),
    ]
    with pytest.raises(ModelyardException, match="cannot order experiments by entity type 'tag'"):
        EXPERIMENTS.parse_order_by(["tags.x"])


# ---- LIKE on SQLite is GLOB --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("like", "glob"),
    [
        ("abc%", "abc*"),
        ("a_c", "a?c"),
        ("%mid%", "*mid*"),
        ("100\\%", "100%"),
        ("a\\_b", "a_b"),
        ("a\\\\b", "a\\b"),
        ("star*q?[x]", "star[*]q[?][[]x]"),
        ("ÄÖ%", "ÄÖ*"),
    ],
)
def test_like_patterns_translate_to_glob(like: str, glob: str) -> None:
    assert like_to_glob(like) == glob


@pytest.mark.parametrize("pattern", ["abc\\", "a\\\\\\"])
def test_like_pattern_ending_in_a_lone_escape_is_refused(pattern: str) -> None:
    with pytest.raises(ModelyardException, match="lone escape character"):
        check_like_pattern(pattern)
    check_like_pattern(pattern + "\\")  # an escaped backslash is fine


# --- limits ----------------------------------------------------------------------------------------
_TIGHT = SearchLimits(max_filter_length=200, max_terms=3, max_depth=2, max_in_values=4, max_order_by=2)


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ("metrics.a > 1 or " * 3 + "metrics.a > 1", "MODELYARD_SEARCH_MAX_TERMS"),
        ("(((metrics.a > 1)))", "MODELYARD_SEARCH_MAX_DEPTH"),
        ("params.p IN ('1', '2', '3') and params.q IN ('4', '5')", "MODELYARD_SEARCH_MAX_IN_VALUES"),
        ("params.p = '" + "x" * 300 + "'", "MODELYARD_SEARCH_MAX_FILTER_LENGTH"),
    ],
)
def test_a_filter_over_a_limit_names_it(text: str, variable: str) -> None:
    with pytest.raises(ModelyardException) as exc_info:
        parse_filter(text, {"metrics": "metric", "params": "param"}, None, _TIGHT)
    assert exc_info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert variable in exc_info.value.message


def test_a_filter_at_the_limits_parses() -> None:
    node = parse_filter("((metrics.a > 1)) and params.p IN ('1', '2') or params.q IN ('3', '4')",
                        {"metrics": "metric", "params": "param"}, None, _TIGHT)
    assert node is not None


def test_deep_parentheses_never_reach_the_recursion_limit() -> None:
    with pytest.raises(ModelyardException):
        RUNS.parse_filter("(" * 100_000 + "metrics.a > 1" + ")" * 100_000)
