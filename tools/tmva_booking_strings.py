#!/usr/bin/env python3
"""Every ``kDL`` booking string in ROOT's TMVA tutorials, as TMVA receives it.

    python tools/tmva_booking_strings.py TUTORIALS_DIR [--out tests/tmva/tutorial_booking_strings.json]

TUTORIALS_DIR is ROOT's ``tutorials`` directory (the ``root`` package on the package index ships
it as ``ROOT/tutorials``); every ``*.C`` and ``*.py`` under it is read, and every
``BookMethod(…, TMVA::Types::kDL, title, options)`` (C++) or
``BookMethod(…, TMVA.Types.kDL, title, **options)`` (Python) call is listed with its file, line,
method title and the option string after the macro's own string building, so that a test can
parse each one (tests/tmva/test_tmva_booking_strings.py).

How the strings are assembled (nothing is hand-copied; "how" in each entry says which rules it took):

* C++: a small interpreter of the statements the tutorials build their strings with, in file
  order: ``TString s = …;``, ``TString s(…);``, ``s += …;``, ``s.Append(…);``, ``const char *``,
  ``int`` and ``std::vector<std::string>`` initialisations, ``+`` of string literals and
  TStrings, adjacent literals, ``TString::Format`` and ``Form`` (printf formats), ``x.Data()``,
  ``x.c_str()``, ``v[i]`` and ``c ? a : b``. ``for (int i = a; i < b; ++i)`` loops are unrolled
  (one booking per iteration: the RNN tutorial's loop over RNN, LSTM and GRU); ``continue`` and
  ``if`` conditions are not evaluated (every booking in the file is listed), except that a
  condition naming a GPU (``useGPU``, ``Use["DNN_GPU"] ? …``) is false and
  ``#ifdef R__HAS_TMVAGPU`` blocks take their non-GPU branch, as on a machine without CUDA.
* Python: the same rules on the module's :mod:`ast` (``ROOT.TString(x)`` is ``x``); a booking's
  keyword arguments become the option string as ROOT's pythonization
  (``ROOT/_pythonization/_tmva/_utils.py``) joins them: ``k=v`` joined by ``:``, and a bool
  ``k=True``/``k=False`` written ``k``/``!k``.

The number of input variables of each booking is taken from its InputLayout (depth × height ×
width) or, without one, from the ``AddVariable(`` calls of the file (TMVA's default input is
1|1|Nvar), and recorded with the entry.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

__all__ = ["bookings", "main"]


class Unknown(Exception):
    """An expression outside the subset the tutorials use."""


#: The pass being run: False reads the tutorials as on a machine without CUDA, True with it
#: (conditions that name only a GPU, and #ifdef R__HAS_TMVAGPU, are then true).
_GPU = False


def _is_gpu_name(text: str) -> bool:
    return "gpu" in text.lower()


def _gpu_only(names: list[str]) -> bool:
    """A condition on a GPU alone (useGPU, Use["DNN_GPU"], hasGPU), not on CPU-or-GPU."""
    names = [n for n in names if n not in ("Use", "")]
    return bool(names) and all(_is_gpu_name(n) for n in names)


# ─────────────────────────────────────────────────────────────────────────────────── C++

_TOKEN = re.compile(r"""
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?)
  | (?P<id>[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*)
  | (?P<op>\+\+|--|\+=|==|!=|<=|>=|&&|\|\||->|::|[-+*/%<>=!?:;,.(){}\[\]&|])
  | (?P<ws>\s+)
""", re.VERBOSE)


def _strip_comments_and_gpu_blocks(text: str) -> tuple[str, bool]:
    """Remove // and /* */ comments (outside strings) and keep the non-GPU branch of
    ``#ifdef R__HAS_TMVAGPU`` blocks; other preprocessor lines go. Line breaks are kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if text.find("\n", i) >= 0 else n
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        else:
            out.append(c)
            i += 1
    lines, kept, stack, gpu_block = "".join(out).split("\n"), [], [], False
    for line in lines:
        s = line.strip()
        if s.startswith("#"):
            word = s[1:].strip()
            if word.startswith(("ifdef", "if ", "ifndef", "if(")):
                gpu = "R__HAS_TMVAGPU" in word
                gpu_block |= gpu
                stack.append(["gpu" if gpu and not word.startswith("ifndef") else "other", gpu and not word.startswith("ifndef")])
                # the branch is live when it is not the GPU branch
                stack[-1][1] = _GPU if gpu and not word.startswith("ifndef") else True
            elif word.startswith(("elif", "else")) and stack:
                if stack[-1][0] == "gpu" and _GPU:  # the GPU branch was taken
                    stack[-1][0], stack[-1][1] = "done", False
                elif stack[-1][0] == "gpu":
                    stack[-1][1] = True if word.startswith("else") or "R__HAS_TMVACPU" in word else False
                    stack[-1][0] = "done" if stack[-1][1] else "gpu"
                elif stack[-1][0] == "done":
                    stack[-1][1] = False
            elif word.startswith("endif") and stack:
                stack.pop()
            kept.append("")
            continue
        kept.append(line if all(live for _, live in stack) else "")
    return "\n".join(kept), gpu_block


def _tokens(text: str) -> list[tuple[str, str, int]]:
    toks, line = [], 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind != "ws":
            toks.append((kind, m.group(), line))
        line += m.group().count("\n")
    merged: list[tuple[str, str, int]] = []
    for tok in toks:  # adjacent string literals are one literal, as in C
        if tok[0] == "str" and merged and merged[-1][0] == "str":
            merged[-1] = ("str", merged[-1][1][:-1] + tok[1][1:], merged[-1][2])
        else:
            merged.append(tok)
    return merged


def _c_string(literal: str) -> str:
    return bytes(literal[1:-1], "utf-8").decode("unicode_escape")


class _CExpr:
    """A recursive-descent evaluator of the C++ expressions the tutorials build strings with."""

    def __init__(self, toks, env):
        self.toks, self.env, self.i = toks, env, 0

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j][1] if j < len(self.toks) else None

    def take(self, value=None):
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            raise Unknown(f"expected {value!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        value = self.ternary()
        if self.i != len(self.toks):
            raise Unknown(f"trailing {self.peek()!r}")
        return value

    def _question(self):
        """The index of this expression's '?' (a ternary), or None."""
        depth = 0
        for k in range(self.i, len(self.toks)):
            t = self.toks[k][1]
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(t, 0)
            if depth < 0 or (depth == 0 and t in (",", ":")):
                return None
            if depth == 0 and t == "?":
                return k
        return None

    def ternary(self):
        q = self._question()
        if q is None:
            return self.additive()
        cond = self.toks[self.i:q]  # not evaluated: a condition naming only a GPU is _GPU, others true
        self.i = q + 1
        a = self.ternary()
        self.take(":")
        b = self.ternary()
        names = [_c_string(t[1]) if t[0] == "str" else t[1] for t in cond if t[0] in ("id", "str")]
        return (a if _GPU else b) if _gpu_only(names) else a

    def additive(self):
        value = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            rhs = self.multiplicative()
            value = value + rhs if op == "+" else value - rhs
        return value

    def multiplicative(self):
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            rhs = self.unary()
            value = value * rhs if op == "*" else value / rhs
        return value

    def unary(self):
        if self.peek() == "!":
            self.take()
            return not self.unary()
        return self.postfix()

    def args(self):
        self.take("(")
        out = []
        while self.peek() != ")":
            out.append(self.ternary())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return out

    def postfix(self):
        value = self.primary()
        while self.peek() in (".", "[", "->"):
            if self.take()[1] == "[":
                index = self.ternary()
                self.take("]")
                value = value[index]
            else:
                method = self.take()[1]
                args = self.args()
                if method in ("Data", "c_str"):
                    pass
                elif method == "Length":
                    value = len(value)
                else:
                    raise Unknown(f"method {method}")
        return value

    def primary(self):
        kind, value, _ = self.take()
        if kind == "str":
            return _c_string(value)
        if kind == "num":
            return float(value) if "." in value or "e" in value.lower() else int(value)
        if value == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        if kind == "id":
            if value in ("TString", "std::string") and self.peek() == "(":
                (arg,) = self.args()
                return str(arg)
            if value in ("TString::Format", "Form"):
                fmt, *rest = self.args()
                return fmt % tuple(rest)
            if value in self.env:
                return self.env[value]
            raise Unknown(f"name {value}")
        raise Unknown(f"token {value!r}")


def _c_eval(toks, env):
    return _CExpr(toks, env).parse()


def _first_span(toks) -> int:
    """How many tokens the first statement of ``toks`` spans: a block, an if with its else chain,
    a loop, or a simple statement up to its ';'."""
    def matching(j, open_, close):
        depth = 0
        for k in range(j, len(toks)):
            depth += {open_: 1, close: -1}.get(toks[k][1], 0)
            if depth == 0:
                return k
        return len(toks) - 1

    if not toks:
        return 0
    word = toks[0][1]
    if word == "{":
        return matching(0, "{", "}") + 1
    if word in ("if", "for", "while", "switch") and len(toks) > 1 and toks[1][1] == "(":
        j = matching(1, "(", ")") + 1
        j += _first_span(toks[j:])
        if word == "if" and j < len(toks) and toks[j][1] == "else":
            j += 1 + _first_span(toks[j + 1:])
        return j
    depth = 0
    for k, t in enumerate(toks):
        depth += {"(": 1, ")": -1, "{": 1, "}": -1}.get(t[1], 0)
        if depth == 0 and t[1] == ";":
            return k + 1
    return len(toks)


def _split_statements(toks):
    """Statements and blocks: a list of ('stmt', toks) and ('for', header, body) / ('block', body)."""
    out, i = [], 0

    def block_end(j):  # j at '{'
        depth = 0
        for k in range(j, len(toks)):
            depth += {"{": 1, "}": -1}.get(toks[k][1], 0)
            if depth == 0:
                return k
        return len(toks) - 1

    def paren_end(j):  # j at '('
        depth = 0
        for k in range(j, len(toks)):
            depth += {"(": 1, ")": -1}.get(toks[k][1], 0)
            if depth == 0:
                return k
        return len(toks) - 1

    while i < len(toks):
        word = toks[i][1]
        if word in ("for", "if", "while", "switch") and i + 1 < len(toks) and toks[i + 1][1] == "(":
            close = paren_end(i + 1)
            header = toks[i + 2:close]
            j = close + 1
            if j < len(toks) and toks[j][1] == "{":
                end = block_end(j)
                body = _split_statements(toks[j + 1:end])
                i = end + 1
            else:  # a single statement
                k = j
                while k < len(toks) and toks[k][1] != ";":
                    k += 1
                body = _split_statements(toks[j:k + 1])
                i = k + 1
            if word == "if":
                orelse = []
                if i < len(toks) and toks[i][1] == "else":
                    span = _first_span(toks[i + 1:])
                    orelse, i = _split_statements(toks[i + 1:i + 1 + span]), i + 1 + span
                out.append(("if", header, body, orelse))
            else:
                out.append(("for", header, body) if word == "for" else ("block", body))
        elif word == "{":
            end = block_end(i)
            out.append(("block", _split_statements(toks[i + 1:end])))
            i = end + 1
        elif word in ("else", "}", ";"):
            i += 1
        else:
            k, depth, assigned = i, 0, False
            while k < len(toks):
                t = toks[k][1]
                if t == "{" and depth == 0 and not assigned:
                    break  # a function (or class, namespace) header: its body is a block
                assigned |= t == "=" and depth == 0
                depth += {"(": 1, ")": -1, "{": 1, "}": -1}.get(t, 0)
                if depth == 0 and t == ";":
                    break
                if depth < 0:
                    break
                k += 1
            if k < len(toks) and toks[k][1] == "{":
                i = k  # the block is read on the next turn
                continue
            out.append(("stmt", toks[i:k]))
            i = k + 1
    return out


def _c_statement(stmt, env, found, how, file, loop_note):
    words = [t[1] for t in stmt]
    if not words:
        return
    # a function header "void f(int a = 1, int b = 2)" followed by its body: the parameters' defaults
    if "BookMethod" in words:
        k = words.index("BookMethod")
        call = stmt[k + 1:]
        args, depth, cur = [], 0, []
        for t in call[1:]:
            if t[1] in "([{" and t[0] == "op":
                depth += 1
            if t[1] in ")]}" and t[0] == "op":
                if depth == 0:
                    break
                depth -= 1
            if t[1] == "," and depth == 0:
                args.append(cur)
                cur = []
            else:
                cur.append(t)
        args.append(cur)
        if len(args) >= 4 and any(t[1].endswith("kDL") for t in args[1]):
            entry = {"file": file, "line": stmt[k][2], "how": list(how) + ([loop_note] if loop_note else [])}
            try:
                entry["title"] = str(_c_eval(args[2], env))
                entry["options"] = str(_c_eval(args[3], env))
            except (Unknown, KeyError, IndexError, TypeError, ValueError) as exc:
                entry["error"] = f"not evaluated: {exc}"
            found.append(entry)
        return
    # declarations: [const] TYPE [*] NAME (= EXPR | (EXPR) | {…})
    i = 0
    while i < len(words) and words[i] in ("const", "static", "auto"):
        i += 1
    if i < len(words) and (words[i] in ("TString", "int", "size_t", "bool", "char", "double", "float")
                           or words[i].startswith("std::")):
        j = i + 1
        if words[i].startswith("std::") and j < len(words) and words[j] == "<":
            depth = 0
            while j < len(words):
                depth += {"<": 1, ">": -1}.get(words[j], 0)
                j += 1
                if depth == 0:
                    break
        while j < len(words) and words[j] == "*":
            j += 1
        if j < len(words) and stmt[j][0] == "id":
            name, rest = words[j], stmt[j + 1:]
            try:
                if not rest:
                    env[name] = ""
                elif rest[0][1] == "=" and rest[1][1] == "{":
                    items = [t for t in rest[2:-1] if t[1] != ","]
                    env[name] = [_c_eval([t], env) for t in items]
                elif rest[0][1] == "=":
                    env[name] = _c_eval(rest[1:], env)
                elif rest[0][1] == "(":
                    env[name] = _c_eval(rest, env)
            except (Unknown, KeyError, IndexError, TypeError, ValueError):
                env.pop(name, None)
        return
    if len(words) >= 3 and stmt[0][0] == "id" and words[1] in ("+=", "="):
        try:
            value = _c_eval(stmt[2:], env)
            env[words[0]] = (env[words[0]] + str(value)) if words[1] == "+=" else value
        except (Unknown, KeyError, IndexError, TypeError, ValueError):
            env.pop(words[0], None)
        return
    if len(words) >= 4 and stmt[0][0] == "id" and words[1] == "." and words[2] == "Append":
        try:
            env[words[0]] = env[words[0]] + str(_c_eval(stmt[4:-1], env))
        except (Unknown, KeyError, IndexError, TypeError, ValueError):
            env.pop(words[0], None)


def _c_run(items, env, found, how, file, loop_note=None):
    for item in items:
        if item[0] == "stmt":
            _c_statement(item[1], env, found, how, file, loop_note)
        elif item[0] == "block":
            _c_run(item[1], env, found, how, file, loop_note)
        elif item[0] == "if":  # a condition naming only a GPU is _GPU; others are true
            names = [_c_string(t[1]) if t[0] == "str" else t[1] for t in item[1] if t[0] in ("id", "str")]
            taken = _GPU if _gpu_only(names) else True
            _c_run(item[2] if taken else item[3], env, found, how, file, loop_note)
        else:  # for (int i = a; i < b; ++i)
            header = [t[1] for t in item[1]]
            m = re.fullmatch(r"(?:int|size_t) (\w+) = (\w+) ; \1 < (\w+) ; (?:\+\+ ?\1|\1 ?\+\+)", " ".join(header))
            if m is None:
                _c_run(item[2], env, found, how, file, loop_note)
                continue
            var, lo, hi = m.groups()
            try:
                lo, hi = (int(env.get(x, x)) for x in (lo, hi))
            except ValueError:  # a loop over the data (MakeTimeData's events): once, no unrolling
                _c_run(item[2], env, found, how, file, loop_note)
                continue
            for value in range(lo, hi):
                env[var] = value
                _c_run(item[2], env, found, how + ["loop unrolled"], file, f"{var} = {value}")


def _c_bookings(path: Path, rel: str) -> list[dict]:
    text, gpu_block = _strip_comments_and_gpu_blocks(path.read_text(errors="replace"))
    how = ["C++ TString building evaluated"] + (["#ifdef R__HAS_TMVAGPU: the non-GPU branch"] if gpu_block and not _GPU else [])
    toks = _tokens(text)
    # function parameters with defaults ("int nevts = 2000") are known values
    env: dict = {}
    for m in re.finditer(r"\b(?:int|size_t)\s+(\w+)\s*=\s*(\d+)\s*[,)]", text):
        env[m.group(1)] = int(m.group(2))
    found: list[dict] = []
    _c_run(_split_statements(toks), env, found, how, rel)
    return found


# ──────────────────────────────────────────────────────────────────────────────── Python


class _PyEval:
    def __init__(self, env):
        self.env = env

    def truth(self, node) -> bool:
        names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
        names += [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if _gpu_only(names):
            return _GPU
        env = dict(self.env)  # hasCPU is true, hasGPU is the pass's: "not hasCPU and not hasGPU" is false
        env.update({n: _GPU if _is_gpu_name(n) else True for n in names if re.search("[cg]pu", n, re.I)})
        try:
            return bool(_PyEval(env).value(node))
        except Unknown:
            return True  # a tutorial's switch (useTMVA_DNN, …): on

    def value(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            raise Unknown(node.id)
        if isinstance(node, ast.BinOp):
            a, b = self.value(node.left), self.value(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Mult):
                return a * b
            raise Unknown("operator")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not self.value(node.operand)
        if isinstance(node, ast.BoolOp):
            values = [bool(self.value(v)) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.IfExp):
            return self.value(node.body if self.truth(node.test) else node.orelse)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Subscript):
            return self.value(node.value)[self.value(node.slice)]
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self.value(v.value if isinstance(v, ast.FormattedValue) else v)) for v in node.values)
        if isinstance(node, ast.Call):
            f = ast.unparse(node.func)
            if f in ("str", "ROOT.TString", "TString") and len(node.args) == 1:
                return str(self.value(node.args[0]))
            if f == "int" and len(node.args) == 1:
                return int(self.value(node.args[0]))
            raise Unknown(f)
        raise Unknown(type(node).__name__)


def _py_options(call: ast.Call, ev: _PyEval) -> str:
    if len(call.args) >= 4:
        return str(ev.value(call.args[3]))
    parts = []
    for kw in call.keywords:
        v = ev.value(kw.value)
        parts.append((kw.arg if v else f"!{kw.arg}") if isinstance(v, bool) else f"{kw.arg}={v}")
    return ":".join(parts)


def _py_run(stmts, ev: _PyEval, found, rel, how, note=None):
    for st in stmts:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            try:
                ev.env[st.targets[0].id] = ev.value(st.value)
            except (Unknown, KeyError, IndexError, TypeError):
                ev.env.pop(st.targets[0].id, None)
        elif isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name) and isinstance(st.op, ast.Add):
            try:
                ev.env[st.target.id] = str(ev.env[st.target.id]) + str(ev.value(st.value))
            except (Unknown, KeyError, IndexError, TypeError):
                ev.env.pop(st.target.id, None)
        elif isinstance(st, ast.If):
            _py_run(st.body if ev.truth(st.test) else st.orelse, ev, found, rel, how, note)
        elif isinstance(st, ast.For) and isinstance(st.target, ast.Name):
            try:
                values = list(range(*[ev.value(a) for a in st.iter.args])) if ast.unparse(st.iter.func) == "range" else None
            except (Unknown, AttributeError, TypeError):
                values = None
            for v in values or []:
                ev.env[st.target.id] = v
                _py_run(st.body, ev, found, rel, how + ["loop unrolled"], f"{st.target.id} = {v}")
        elif isinstance(st, (ast.With, ast.Try)):
            _py_run(st.body, ev, found, rel, how, note)
        elif isinstance(st, (ast.FunctionDef,)):
            _py_run(st.body, ev, found, rel, how, note)
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
            call = st.value
            fname = ast.unparse(call.func)
            if fname.endswith(".Append") and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                name = call.func.value.id
                try:
                    ev.env[name] = str(ev.env[name]) + str(ev.value(call.args[0]))
                except (Unknown, KeyError, IndexError, TypeError):
                    ev.env.pop(name, None)
            elif fname.endswith("BookMethod") and len(call.args) >= 3 and ast.unparse(call.args[1]).endswith("kDL"):
                entry = {"file": rel, "line": call.lineno,
                         "how": how + ["keywords joined as ROOT's pythonization joins them"] + ([note] if note else [])}
                try:
                    entry["title"] = str(ev.value(call.args[2]))
                    entry["options"] = _py_options(call, ev)
                except (Unknown, KeyError, IndexError, TypeError) as exc:
                    entry["error"] = f"not evaluated: {exc}"
                found.append(entry)


def _py_bookings(path: Path, rel: str) -> list[dict]:
    tree = ast.parse(path.read_text(errors="replace"))
    found: list[dict] = []
    _py_run(tree.body, _PyEval({}), found, rel, ["Python evaluated"])
    return found


# ──────────────────────────────────────────────────────────────────────────────── driver


def _n_variables(entry: dict, source: str) -> dict:
    m = re.search(r"(?:^|:)InputLayout=([0-9|]+)", entry.get("options", ""))
    if m:
        n = 1
        for f in m.group(1).split("|"):
            n *= int(f)
        return {"n_variables": n, "n_variables_from": "InputLayout"}
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("//", "#"))]
    calls = sum(len(re.findall(r"AddVariable\(", line)) for line in lines)
    for line in lines:  # AddVariablesArray(name, N): N variables, N a number or a name set to one
        for size in re.findall(r"AddVariablesArray\([^,]+,\s*(\w+)\s*\)", line):
            value = re.search(rf"\b{size}\s*=\s*(\d+)\s*(?:\*\s*(\d+))?", source) if not size.isdigit() else None
            calls += int(size) if size.isdigit() else (int(value.group(1)) * int(value.group(2) or 1) if value else 0)
    return {"n_variables": calls,
            "n_variables_from": "the file's AddVariable / AddVariablesArray calls (TMVA's default InputLayout 1|1|Nvar)"}


def bookings(tutorials: Path) -> list[dict]:
    """Every kDL booking under ``tutorials`` (sorted by file and line): each file is read twice, as
    on a machine without CUDA and as on one with it; a booking the second reading adds (a GPU
    method, or Architecture=GPU) is listed with "the GPU branch" in its "how"."""
    global _GPU
    out = []
    for path in sorted(tutorials.rglob("*")):
        if path.suffix not in (".C", ".py") or "kDL" not in path.read_text(errors="replace"):
            continue
        rel = path.relative_to(tutorials).as_posix()
        source = path.read_text(errors="replace")
        seen, found = set(), []
        for gpu in (False, True):
            _GPU = gpu
            try:
                entries = _c_bookings(path, rel) if path.suffix == ".C" else _py_bookings(path, rel)
            finally:
                _GPU = False
            for entry in entries:
                key = (entry["line"], entry.get("title"), entry.get("options"))
                if key in seen:
                    continue
                seen.add(key)
                if gpu:
                    entry["how"] = [h for h in entry["how"] if "non-GPU" not in h] + ["the GPU branch"]
                entry.update(_n_variables(entry, source))
                found.append(entry)
        out.extend(sorted(found, key=lambda e: (e["line"], e["how"])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tutorials", type=Path, help="ROOT's tutorials directory")
    parser.add_argument("--out", type=Path, help="write the JSON here (default: standard output)")
    args = parser.parse_args(argv)
    if not args.tutorials.is_dir():
        print(f"tmva_booking_strings: {args.tutorials} is not a directory", file=sys.stderr)
        return 2
    text = json.dumps(bookings(args.tutorials), indent=1, ensure_ascii=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
