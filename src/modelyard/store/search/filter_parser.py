"""MLflow's search filter language, plus OR and parentheses, parsed into a small AST.

The grammar (keywords are case-insensitive; AND binds tighter than OR):

    filter      := or_expr EOF | <empty>
    or_expr     := and_expr ("OR" and_expr)*
    and_expr    := primary ("AND" primary)*
    primary     := "(" or_expr ")" | comparison
    comparison  := identifier ( op scalar | ["NOT"] "IN" "(" scalar ("," scalar)* ")"
                                | "IS" ["NOT"] "NULL" )
    op          := "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"
    scalar      := 'string' | "string" | ["-" | "+"] number
    identifier  := name("." name)*            -> entity = first name, key = the rest (MLflow splits
                                                 on the first dot, so `tags.mlflow.runName` works)
                 | name "." quoted            -> `metrics."my metric"`, ``params.`a b` ``
                 | quoted ["." (name(.name)* | quoted)]   -> `` `Run name` ``, `` `params`.lr ``

Strings: a quote inside is written doubled (`'it''s'`) or backslash-escaped (`'it\\'s'`); every
other backslash is kept as written, so that LIKE patterns can escape `%` and `_` with it.

The parser knows nothing about runs or experiments: the caller passes the entity names it accepts
(aliases -> canonical name) and the entity of an unprefixed identifier. What each entity may be
compared with is checked afterwards, per search kind (`modelyard.store.search.kinds`), so the
registry's searches reuse this parser with their own entity names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.store.search.limits import SearchLimits, over_limit, search_limits

Scalar = str | int | float
Value = Scalar | tuple[Scalar, ...] | None

COMPARISON_OPS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE")
LIST_OPS = ("IN", "NOT IN")
NULL_OPS = ("IS NULL", "IS NOT NULL")
KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"})


class FilterSyntaxError(ModelyardException):
    """A filter or order_by string that cannot be understood; `position` is a 0-based offset."""

    def __init__(self, text: str, problem: str, position: int, what: str = "filter") -> None:
        super().__init__(
            f"Invalid {what} '{text}': {problem} (at character {position + 1}).",
            errors.INVALID_PARAMETER_VALUE,
        )
        self.problem = problem
        self.position = position


@dataclass(frozen=True)
class Comparison:
    """One `<entity>.<key> <op> <value>` clause. `value` is a str or number for scalar ops, a
    tuple for IN / NOT IN and None for IS [NOT] NULL; numbers stay numbers, strings stay strings,
    so per-kind validation can tell `metrics.x > 1` from `metrics.x > '1'`."""

    entity: str
    key: str
    op: str
    value: Value
    position: int = 0


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Comparison | And | Or


@dataclass(frozen=True)
class Identifier:
    entity: str
    key: str
    position: int


# --- lexer -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # NAME, QUOTED, NUMBER, OP, PUNCT, EOF
    text: str  # NAME: the name path; QUOTED: the unquoted content; others: as written
    position: int
    quote: str = ""  # for QUOTED: the quote character


_WS = re.compile(r"\s+")
# A name path: a word not starting with a digit, then `.word` parts (a part may start with a digit:
# `metrics.1st`). A trailing `.` followed by a quote is left for the parser (`metrics."a b"`).
_NAME = re.compile(r"[^\W\d]\w*(?:\.\w+)*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_OPS = ("!=", "<=", ">=", "=", "<", ">")
_PUNCT = "().,-+"
_QUOTES = "'\"`"


def tokenize(text: str, what: str = "filter") -> list[Token]:
    return list(iter_tokens(text, what))


def iter_tokens(text: str, what: str = "filter") -> Iterator[Token]:
    """Tokens one at a time, so that a parse error earlier in the text is reported before a
    lexical one later in it."""
    i, n = 0, len(text)
    while i < n:
        if m := _WS.match(text, i):
            i = m.end()
            continue
        ch = text[i]
        if ch in _QUOTES:
            content, i_next = _read_quoted(text, i, what)
            yield Token("QUOTED", content, i, ch)
            i = i_next
            continue
        if m := _NUMBER.match(text, i):
            if m.end() < n and (text[m.end()].isalpha() or text[m.end()] == "_"):
                raise FilterSyntaxError(text, f"invalid number '{text[i : m.end() + 1]}'", i, what)
            yield Token("NUMBER", m.group(), i)
            i = m.end()
            continue
        if m := _NAME.match(text, i):
            yield Token("NAME", m.group(), i)
            i = m.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            if text.startswith("==", i) or text.startswith("<>", i):
                raise FilterSyntaxError(
                    text, f"unknown comparator '{text[i : i + 2]}' (use = or !=)", i, what
                )
            yield Token("OP", op, i)
            i += len(op)
            continue
        if ch in _PUNCT:
            yield Token("PUNCT", ch, i)
            i += 1
            continue
        raise FilterSyntaxError(text, f"unexpected character '{ch}'", i, what)
    yield Token("EOF", "", n)


def _read_quoted(text: str, start: int, what: str) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] == quote:
            out.append(quote)
            i += 2
        elif ch == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise FilterSyntaxError(text, f"unterminated quoted string starting with {quote}", start, what)


# --- parser ------------------------------------------------------------------------------------
class Parser:
    """A recursive-descent parser over `tokenize(text)`; `parse_filter()` reads a whole filter,
    `parse_identifier()` one identifier (the order_by parser builds on it)."""

    def __init__(
        self,
        text: str,
        entities: Mapping[str, str],
        default_entity: str | None,
        what: str = "filter",
        limits: SearchLimits | None = None,
    ) -> None:
        self.text = text
        self.what = what
        self.limits = limits or search_limits()
        #: Parentheses open at the current token, comparisons and IN-list values read so far: each
        #: is checked against `limits` as it grows, so an oversized filter stops early, and the
        #: recursion (three frames per parenthesis) never nears Python's limit.
        self.depth = 0
        self.terms = 0
        self.in_values = 0
        self.entities = {alias.lower(): canonical for alias, canonical in entities.items()}
        self.default_entity = default_entity
        self._lexer = iter_tokens(text, what)
        self.tokens: list[Token] = []
        self.i = 0

    # token helpers
    def peek(self, offset: int = 0) -> Token:
        while len(self.tokens) <= self.i + offset:
            if self.tokens and self.tokens[-1].kind == "EOF":
                return self.tokens[-1]
            self.tokens.append(next(self._lexer))
        return self.tokens[self.i + offset]

    @property
    def tok(self) -> Token:
        return self.peek()

    def advance(self) -> Token:
        tok = self.peek()
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def is_keyword(self, word: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.kind == "NAME" and tok.text.upper() == word

    def is_punct(self, ch: str) -> bool:
        return self.tok.kind == "PUNCT" and self.tok.text == ch

    def fail(self, problem: str, tok: Token | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(self.text, problem, (tok or self.tok).position, self.what)

    def describe(self, tok: Token) -> str:
        if tok.kind == "EOF":
            return "end of input"
        if tok.kind == "QUOTED":
            return f"{tok.quote}{tok.text}{tok.quote}"
        return f"'{tok.text}'"

    def source(self, ident: Identifier, next_tok: Token) -> str:
        return self.text[ident.position : next_tok.position].rstrip()

    def expect_punct(self, ch: str, context: str) -> Token:
        if not self.is_punct(ch):
            raise self.fail(f"expected '{ch}' {context}, found {self.describe(self.tok)}")
        return self.advance()

    # grammar
    def parse_filter(self) -> Node | None:
        if len(self.text) > self.limits.max_filter_length:
            raise over_limit(
                "the filter's length", len(self.text), self.limits.max_filter_length, "SEARCH_MAX_FILTER_LENGTH"
            )
        if self.tok.kind == "EOF":
            return None
        node = self.parse_or()
        if self.tok.kind != "EOF":
            if self.is_punct(")"):
                raise self.fail("unbalanced ')'")
            raise self.fail(f"expected AND, OR or end of input, found {self.describe(self.tok)}")
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.is_keyword("OR"):
            self.advance()
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(_flatten(children, Or)))

    def parse_and(self) -> Node:
        children = [self.parse_primary()]
        while self.is_keyword("AND"):
            self.advance()
            children.append(self.parse_primary())
        return children[0] if len(children) == 1 else And(tuple(_flatten(children, And)))

    def parse_primary(self) -> Node:
        if self.is_punct("("):
            opening = self.advance()
            if self.is_punct(")"):
                raise self.fail("empty parentheses")
            self.depth += 1
            if self.depth > self.limits.max_depth:
                raise over_limit(
                    "the filter's parenthesis depth", self.depth, self.limits.max_depth, "SEARCH_MAX_DEPTH"
                )
            node = self.parse_or()
            self.depth -= 1
            if not self.is_punct(")"):
                raise self.fail(
                    f"expected ')' to close the '(' at character {opening.position + 1}, "
                    f"found {self.describe(self.tok)}"
                )
            self.advance()
            return node
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        self.terms += 1
        if self.terms > self.limits.max_terms:
            raise over_limit("the number of comparisons", self.terms, self.limits.max_terms, "SEARCH_MAX_TERMS")
        ident = self.parse_identifier()
        op_tok = self.tok
        if op_tok.kind == "OP":
            self.advance()
            return Comparison(ident.entity, ident.key, op_tok.text, self.parse_scalar(), ident.position)
        word = op_tok.text.upper() if op_tok.kind == "NAME" else ""
        if word in ("LIKE", "ILIKE"):
            self.advance()
            return Comparison(ident.entity, ident.key, word, self.parse_scalar(), ident.position)
        if word == "IN" or (word == "NOT" and self.is_keyword("IN", 1)):
            op = "IN" if word == "IN" else "NOT IN"
            self.advance()
            if op == "NOT IN":
                self.advance()
            return Comparison(ident.entity, ident.key, op, self.parse_list(op), ident.position)
        if word == "IS":
            self.advance()
            negated = self.is_keyword("NOT")
            if negated:
                self.advance()
            if not self.is_keyword("NULL"):
                raise self.fail(f"expected NULL after IS{' NOT' if negated else ''}")
            self.advance()
            op = "IS NOT NULL" if negated else "IS NULL"
            return Comparison(ident.entity, ident.key, op, None, ident.position)
        if word == "NOT":
            raise self.fail("NOT is only supported as NOT IN and IS NOT NULL")
        if op_tok.kind == "PUNCT" and op_tok.text in "-.":
            raise self.fail(
                f"unexpected '{op_tok.text}' after '{self.source(ident, op_tok)}'; quote keys that "
                f'contain special characters, e.g. metrics."my-metric" or params.`a b`'
            )
        raise self.fail(
            f"expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL) "
            f"after '{self.source(ident, op_tok)}', found {self.describe(op_tok)}"
        )

    def parse_identifier(self) -> Identifier:
        tok = self.tok
        if tok.kind == "NAME":
            self.advance()
            if tok.text.upper() in KEYWORDS:
                raise self.fail(f"expected an identifier, found keyword '{tok.text}'", tok)
            if "." in tok.text:
                prefix, key = tok.text.split(".", 1)
                return Identifier(self.resolve_entity(prefix, tok), key, tok.position)
            if self.is_punct("."):
                return Identifier(self.resolve_entity(tok.text, tok), self.parse_key(), tok.position)
            return Identifier(self.unprefixed(tok), tok.text, tok.position)
        if tok.kind == "QUOTED" and tok.quote in '`"':
            self.advance()
            if self.is_punct("."):
                return Identifier(self.resolve_entity(tok.text, tok), self.parse_key(), tok.position)
            return Identifier(self.unprefixed(tok), tok.text, tok.position)
        if tok.kind == "EOF":
            raise self.fail("expected an identifier, found end of input")
        raise self.fail(
            f"expected an identifier such as metrics.<key>, params.<key> or tags.<key>, "
            f"found {self.describe(tok)}"
        )

    def parse_key(self) -> str:
        dot = self.advance()  # the '.'
        tok = self.tok
        if tok.kind == "QUOTED" or tok.kind == "NAME":
            self.advance()
            if tok.text == "":
                raise self.fail("empty key", tok)
            return tok.text
        raise self.fail("expected a key after '.'", tok if tok.kind != "EOF" else dot)

    def resolve_entity(self, prefix: str, tok: Token) -> str:
        canonical = self.entities.get(prefix.lower())
        if canonical is None:
            valid = ", ".join(sorted(set(self.entities)))
            raise self.fail(f"invalid entity type '{prefix}'; valid entity types are: {valid}", tok)
        return canonical

    def unprefixed(self, tok: Token) -> str:
        if self.default_entity is None:
            raise self.fail(f"identifier '{tok.text}' needs an entity prefix such as tags.{tok.text}", tok)
        return self.default_entity

    def parse_scalar(self) -> Scalar:
        tok = self.tok
        if tok.kind == "QUOTED":
            if tok.quote == "`":
                raise self.fail("backticks quote names, not values; use single or double quotes")
            self.advance()
            return tok.text
        sign = ""
        if self.is_punct("-") or self.is_punct("+"):
            sign = self.advance().text
            tok = self.tok
        if tok.kind == "NUMBER":
            self.advance()
            return _number(sign + tok.text)
        if tok.kind == "NAME" and tok.text.upper() == "NULL":
            raise self.fail("use IS NULL / IS NOT NULL to test for a missing value")
        if tok.kind == "NAME":
            raise self.fail(
                f"expected a quoted string or a number, found {self.describe(tok)} "
                f"(string values need quotes: '{tok.text}')"
            )
        raise self.fail(f"expected a quoted string or a number, found {self.describe(tok)}")

    def parse_list(self, op: str) -> tuple[Scalar, ...]:
        self.expect_punct("(", f"after {op}")
        if self.is_punct(")"):
            raise self.fail(f"the list after {op} is empty")
        values = [self.parse_scalar()]
        while self.is_punct(","):
            self.advance()
            values.append(self.parse_scalar())
        self.expect_punct(")", f"to close the list after {op}")
        self.in_values += len(values)
        if self.in_values > self.limits.max_in_values:
            raise over_limit(
                "the number of IN / NOT IN values", self.in_values, self.limits.max_in_values,
                "SEARCH_MAX_IN_VALUES",
            )
        return tuple(values)


def _number(text: str) -> int | float:
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return float(text)


def _flatten(children: list[Node], kind: type[And] | type[Or]) -> list[Node]:
    out: list[Node] = []
    for child in children:
        if isinstance(child, kind):
            out.extend(child.children)
        else:
            out.append(child)
    return out


def parse_filter(
    text: str | None,
    entities: Mapping[str, str],
    default_entity: str | None = None,
    limits: SearchLimits | None = None,
) -> Node | None:
    """Parse a filter string; None for an empty or blank filter (match everything).

    `entities` maps each accepted prefix (case-insensitive) to its canonical entity name;
    `default_entity` is the entity of an identifier written without a prefix (None: not allowed);
    `limits` default to the process's (`limits.search_limits()`).
    """
    if text is None or not text.strip():
        return None
    return Parser(text, entities, default_entity, "filter", limits).parse_filter()


def iter_comparisons(node: Node | None) -> list[Comparison]:
    """Every comparison in the tree, left to right."""
    if node is None:
        return []
    if isinstance(node, Comparison):
        return [node]
    out: list[Comparison] = []
    for child in node.children:
        out.extend(iter_comparisons(child))
    return out
