"""The `--where` language of `pairsmith select`: a small part of polars' expression syntax, read by an
`ast` walk that builds the polars expression itself, so nothing the user types is ever executed.

Grammar (anything else is refused with one line naming what is not allowed):

- columns and literals: `pl.col("name")` or `col("name")`, `pl.lit(x)` or `lit(x)`;
- constants: strings, ints, floats, `True`, `False`, `None`, and lists or tuples of them;
- comparisons: `==  !=  <  <=  >  >=` (one per pair of parentheses: write `(a < b) & (b < c)`);
- logic: `&  |  ~` (not `and`, `or`, `not`, which Python cannot apply to a column);
- arithmetic: `+  -  *  /  //  %` and unary `-` (constant-only arithmetic on numbers only);
- conditions: `pl.when(COND).then(X)[.when(COND).then(Y)].otherwise(Z)`;
- expression methods: `is_null is_not_null is_nan is_not_nan is_in is_between abs fill_null fill_nan
  round len cast` (`cast` takes a type such as `pl.Float64`), `.str.contains starts_with ends_with
  len_chars to_lowercase to_uppercase`, `.list.contains len`; keyword arguments are constants or
  expressions.

Example: `(pl.col("status") == "success") & pl.col("caption").str.contains("dog") & ~pl.col("is_duplicate")`.
"""

from __future__ import annotations

import ast
import operator

import polars as pl
from polars.expr.whenthen import ChainedThen, ChainedWhen, Then, When

MAX_CHARS = 10_000  # longer texts are refused before parsing (a deep nesting can exhaust the parser)

FUNCTIONS = {"col": pl.col, "lit": pl.lit, "when": pl.when}
DTYPES = frozenset(
    {"Boolean", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}
    | {"Float32", "Float64", "String", "Date", "Datetime"}
)
EXPR_METHODS = [
    "is_null",
    "is_not_null",
    "is_nan",
    "is_not_nan",
    "is_in",
    "is_between",
    "abs",
    "fill_null",
    "fill_nan",
    "round",
    "len",
    "cast",
]
METHODS: dict[str, tuple[type, ...]] = {name: (pl.Expr,) for name in EXPR_METHODS} | {
    "then": (When, ChainedWhen),
    "when": (Then, ChainedThen),
    "otherwise": (Then, ChainedThen),
}
NAMESPACES = {
    "str": frozenset({"contains", "starts_with", "ends_with", "len_chars", "to_lowercase", "to_uppercase"}),
    "list": frozenset({"contains", "len"}),
}
COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
CONSTANT_TYPES = (str, int, float, bool, type(None))
WHEN_TYPES = (When, ChainedWhen, Then, ChainedThen)


class WhereError(ValueError):
    """An expression outside the `--where` grammar; the message says which part."""


def parse_where(text: str) -> pl.Expr:
    """The polars expression that `text` spells, built without executing any of it."""
    if len(text) > MAX_CHARS:
        raise WhereError(f"the expression is longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise WhereError(f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise WhereError("the expression is nested too deeply") from None
    try:
        value = _value(tree.body)
    except RecursionError:
        raise WhereError("the expression is nested too deeply") from None
    if not isinstance(value, pl.Expr):
        raise WhereError('the expression must compute a column, e.g. pl.col("status") == "success"')
    return value


def _refuse(node: ast.AST, why: str = "is not part of the --where grammar") -> WhereError:
    return WhereError(f"{ast.unparse(node)!r} {why} (see `pairsmith select --help`)")


def _value(node: ast.AST):
    """A constant, a list of constants, a dtype or a polars object, from an allowed node."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, CONSTANT_TYPES):
            return node.value
        raise _refuse(node)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_value(item) for item in node.elts]
        if not all(isinstance(i, CONSTANT_TYPES) for i in items):
            raise _refuse(node, "is not a list of constants")
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1:
            raise _refuse(node, "chains comparisons: write (a < b) & (b < c)")
        return _apply(node, COMPARE, node.ops[0], _value(node.left), _value(node.comparators[0]))
    if isinstance(node, ast.BinOp):
        return _apply(node, BINARY, node.op, _value(node.left), _value(node.right))
    if isinstance(node, ast.UnaryOp):
        return _unary(node)
    if isinstance(node, ast.Attribute) and _is_pl(node.value) and node.attr in DTYPES:
        return getattr(pl, node.attr)
    if isinstance(node, ast.BoolOp):
        raise _refuse(node, "uses and/or: write & and | with parentheses")
    raise _refuse(node)


def _is_pl(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "pl"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _apply(node: ast.AST, table: dict, op: ast.AST, left, right):
    if type(op) not in table:
        raise _refuse(node, f"uses the operator {type(op).__name__}, which is not allowed")
    exprs = isinstance(left, pl.Expr) or isinstance(right, pl.Expr)
    if not exprs and not (_number(left) and _number(right)):
        raise _refuse(node, "combines constants that are not numbers")
    return _guarded(node, table[type(op)], left, right)


def _unary(node: ast.UnaryOp):
    operand = _value(node.operand)
    if isinstance(node.op, ast.USub) and (_number(operand) or isinstance(operand, pl.Expr)):
        return -operand
    if isinstance(node.op, ast.Invert) and isinstance(operand, pl.Expr):
        return ~operand
    if isinstance(node.op, ast.Not):
        raise _refuse(node, "uses not: write ~")
    raise _refuse(node)


def _call(node: ast.Call):
    """`FUNC(...)`, `pl.FUNC(...)`, `EXPR.METHOD(...)` or `EXPR.NAMESPACE.METHOD(...)`."""
    func = node.func
    if isinstance(func, ast.Name) and func.id in FUNCTIONS:
        target = FUNCTIONS[func.id]
    elif isinstance(func, ast.Attribute) and _is_pl(func.value):
        if func.attr not in FUNCTIONS:
            raise _refuse(func, "is not an allowed function (pl.col, pl.lit, pl.when)")
        target = FUNCTIONS[func.attr]
    elif (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and func.value.attr in NAMESPACES
    ):
        if func.attr not in NAMESPACES[func.value.attr]:
            raise _refuse(func, "is not an allowed method")
        receiver = _value(func.value.value)
        if not isinstance(receiver, pl.Expr):
            raise _refuse(func, "needs a column expression before it")
        target = getattr(getattr(receiver, func.value.attr), func.attr)
    elif isinstance(func, ast.Attribute) and func.attr in METHODS:
        receiver = _value(func.value)
        if not isinstance(receiver, METHODS[func.attr]):
            raise _refuse(func, "needs a column expression (or a when/then) before it")
        target = getattr(receiver, func.attr)
    else:
        raise _refuse(func, "is not an allowed function or method")
    args = [_argument(a) for a in node.args]
    kwargs = {}
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg.startswith("_"):
            raise _refuse(node, "passes arguments in a way that is not allowed")
        kwargs[keyword.arg] = _argument(keyword.value)
    return _guarded(node, target, *args, **kwargs)


def _argument(node: ast.AST):
    if isinstance(node, ast.Starred):
        raise _refuse(node)
    value = _value(node)
    if isinstance(value, WHEN_TYPES) and not isinstance(value, pl.Expr):
        raise _refuse(node, "is an unfinished when/then: end it with .otherwise(...)")
    return value


def _guarded(node: ast.AST, function, *args, **kwargs):
    """Call an allowed polars function; its complaints become WhereErrors."""
    try:
        return function(*args, **kwargs)
    except (TypeError, ValueError, ArithmeticError, pl.exceptions.PolarsError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WhereError(f"{ast.unparse(node)!r}: {message}") from None
