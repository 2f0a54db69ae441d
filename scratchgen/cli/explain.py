"""``scratchgen explain``: why a model gave each token of a text its probability, token by token.

    scratchgen explain MODEL [MODEL2] TEXT [--json] [--html FILE] [--top K] [--label L]

TEXT is one sequence, or ``-`` to read stdin, one sequence a line (blank lines skipped). For every token,
``</s>`` included, the records of :func:`scratchgen.explain.explain`: log P, bits, rank, the top K
alternatives and the family's "why". The terminal gets one aligned table a sequence (the grammar's parse
drawn below it); ``--json`` prints one JSON object a sequence (JSON Lines); ``--html FILE`` also writes one
self-contained page where each token is coloured by its surprisal and hovering it shows its record.
With MODEL2 the two models are side by side, with bits(MODEL2) - bits(MODEL) for each token.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import unicodedata

from .options import check_label, declare_files, int_in, print_json

__all__ = ["register", "render_html", "render_table"]

#: Surprisal (bits) at which the colour scale saturates in the HTML page.
RED_BITS = 16.0


def _texts(args: argparse.Namespace) -> list[str]:
    """The sequences to explain: TEXT's lines, or stdin's with ``-``; blank lines skipped."""
    from ..errors import CorpusError

    source = sys.stdin.read() if args.text == "-" else args.text
    lines = [line for line in source.splitlines() if line.strip()]
    if not lines:
        where = "stdin" if args.text == "-" else "TEXT"
        raise CorpusError(f"there is nothing to explain: {where} is empty (give a text, or - to read stdin)")
    return lines


def _explain(args: argparse.Namespace) -> int:
    from ..errors import ScratchgenError
    from ..explain import explain
    from ..io import load

    model = load(args.model)
    other = None if args.model2 is None else load(args.model2)
    if args.label is not None:
        for m in (model, other):
            if m is not None:
                check_label(m, args.label)
    if other is not None and other.tokenizer_ != model.tokenizer_:
        raise ScratchgenError(
            f"MODEL {args.model!r} splits text at {model.tokenizer_.level} level and MODEL2 {args.model2!r} at "
            f"{other.tokenizer_.level} level (lowercase {model.tokenizer_.lowercase} and "
            f"{other.tokenizer_.lowercase}): their tokens cannot be compared; train them with the same --level"
        )
    results = [explain(model, text, other=other, top=args.top, label=args.label) for text in _texts(args)]
    names = (args.model, args.model2)
    for result in results:
        if args.json:
            print_json(result)
        else:
            print(render_table(result, names))
    if args.html is not None:
        from ..io import atomic_write

        page = render_html(results, names)
        atomic_write(args.html, lambda f: f.write(page.encode("utf-8")))
    return 0


# --- the terminal table ---------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters count twice, combining marks not at all."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _shown(token: str) -> str:
    """A token as it reads in a table cell: spaces and control characters made visible."""
    return "".join("\u2423" if c == " " else repr(c)[1:-1] if not c.isprintable() else c for c in token) or "''"


def _number(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return str(x)
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # -0.000 (a rounding) as 0.000


def _top(record: dict) -> str:
    return " ".join(f"{_shown(t)}:{p:.2g}" for t, p in record["top"])


def _columns(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - _width(cell))
            cells.append(pad + cell if i in right else cell + pad)
        lines.append("  ".join(cells).rstrip())
    return lines


def render_table(result: dict, names: tuple = ("MODEL", None)) -> str:
    """One explained sequence as an aligned table (and the grammar's parse drawn below it)."""
    two = "other" in result
    head = ["token", "log P", "bits", "rank"]
    if two:
        head += ["log P(2)", "bits(2)", "rank(2)", "bits(2)-bits"]
    head += ["top", "why"] + (["top(2)", "why(2)"] if two else [])
    rows = [head]
    for r in result["tokens"]:
        row = [_shown(r["token"]) + (" (oov)" if r.get("oov") else ""), _number(r["logprob"]), _number(r["bits"])]
        row.append(str(r["rank"]))
        if two:
            o = r["other"]
            row += [_number(o["logprob"]), _number(o["bits"]), str(o["rank"]), _number(r["bits_difference"])]
        row += [_top(r), r.get("why", "")]
        if two:
            row += [_top(r["other"]), r["other"].get("why", "")]
        rows.append(row)
    right = {1, 2, 3} | ({4, 5, 6, 7} if two else set())
    lines = [f"{result['text']}"]
    lines.append(f"  {names[0]}: log P = {_number(result['logprob'], 4)} nats = {_bits(result['logprob'])} bits")
    if two:
        lp = result["other"]["logprob"]
        lines.append(f"  MODEL2 {names[1]}: log P = {_number(lp, 4)} nats = {_bits(lp)} bits")
    lines += _columns(rows, right)
    for key, label in (("", names[0]), ("other", names[1])):
        part = result if not key else result.get(key, {})
        if "parse" in part:
            from ..grammar.explain import ascii_tree

            lines.append(f"Viterbi parse ({label}, log P = {_number(part['parse_logprob'], 4)}):")
            lines.append(ascii_tree(part["parse"]))
    return "\n".join(lines) + "\n"


def _bits(logprob: float) -> str:
    return _number(-logprob / math.log(2) if logprob > -math.inf else math.inf, 4)


# --- the HTML page --------------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 2em; line-height: 2.2; }
.seq { margin-bottom: 1.5em; }
.row { white-space: nowrap; overflow-x: auto; }
.name { display: inline-block; min-width: 9em; color: #555; font-size: 0.85em; }
.tok { padding: 0.15em 0.25em; margin: 0 1px; border-radius: 3px; font-family: monospace; cursor: default; }
.tok:hover { outline: 2px solid #000; }
#panel { position: fixed; right: 1em; top: 1em; width: 34em; max-height: 90vh; overflow: auto;
         background: #fff; border: 1px solid #999; padding: 0.5em; font-size: 0.8em; line-height: 1.3; }
pre.tree { line-height: 1.2; font-size: 0.85em; }
"""

# Hovering a token shows its record in the panel (without JavaScript the title attribute still does).
_SCRIPT = """
document.addEventListener("mouseover", function (e) {
  var t = e.target;
  if (t.classList && t.classList.contains("tok")) {
    document.getElementById("panel").textContent = JSON.stringify(JSON.parse(t.dataset.record), null, 1);
  }
});
"""


def _colour(bits: float) -> str:
    """Green (0 bits) to red (``RED_BITS`` or more, and an impossible token)."""
    share = 1.0 if not math.isfinite(bits) else min(max(bits, 0.0), RED_BITS) / RED_BITS
    return f"hsl({120 * (1 - share):.0f}, 75%, 78%)"


def _difference_colour(diff: float) -> str:
    """Blue where MODEL2 is less surprised than MODEL (diff < 0), red where it is more, white when equal."""
    share = 1.0 if not math.isfinite(diff) else min(abs(diff), RED_BITS / 2) / (RED_BITS / 2)
    hue = 220 if diff < 0 else 0
    return f"hsl({hue}, 80%, {100 - 30 * share:.0f}%)"


def _json(record: dict) -> str:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(record), ensure_ascii=False)


def _title(record: dict) -> str:
    """The record in one line, for the title attribute (the hover text without JavaScript)."""
    if "logprob" not in record:
        return f"{record['token']}: bits(2) - bits = {_number(record['bits_difference'])}"
    title = f"{record['token']}: log P {_number(record['logprob'])}, {_number(record['bits'])} bits"
    title += f", rank {record['rank']}"
    return title + (f"; {record['why']}" if record.get("why") else "")


def _span(record: dict, model: str, index: int, colour: str) -> str:
    import html  # here, not at the top: only --html output needs it (start-up of every command)

    token = record["token"]
    shown = html.escape(token if token.strip() else "\u2423" * max(1, len(token)))
    title = html.escape(_title(record), quote=True)
    data = html.escape(_json(record), quote=True)
    return (
        f'<span class="tok" data-model="{model}" data-index="{index}" style="background:{colour}" '
        f'title="{title}" data-record="{data}">{shown}</span>'
    )


def render_html(results: list[dict], names: tuple = ("MODEL", None)) -> str:
    """One self-contained page: each sequence's tokens coloured by surprisal, the record shown on hover."""
    import html  # here, not at the top: only --html output needs it (start-up of every command)

    body = []
    for result in results:
        parts = [f'<div class="seq"><h3>{html.escape(result["text"])}</h3>']
        mine = [{k: v for k, v in r.items() if k not in ("other", "bits_difference")} for r in result["tokens"]]
        rows = [(names[0] or "MODEL", "1", mine, [_colour(r["bits"]) for r in mine])]
        if "other" in result:
            theirs = [{"token": r["token"], **r["other"]} for r in result["tokens"]]
            rows.append((names[1] or "MODEL2", "2", theirs, [_colour(r["bits"]) for r in theirs]))
            diff = [{"token": r["token"], "bits_difference": r["bits_difference"]} for r in result["tokens"]]
            rows.append(("bits(2) - bits", "diff", diff, [_difference_colour(r["bits_difference"]) for r in diff]))
        for name, key, records, colours in rows:
            spans = "".join(_span(r, key, i, c) for i, (r, c) in enumerate(zip(records, colours)))
            parts.append(f'<div class="row"><span class="name">{html.escape(str(name))}</span>{spans}</div>')
        for key in ("", "other"):
            part = result if not key else result.get(key, {})
            if "parse" in part:
                from ..grammar.explain import ascii_tree

                parts.append(f'<pre class="tree">{html.escape(ascii_tree(part["parse"]))}</pre>')
        parts.append("</div>")
        body.append("\n".join(parts))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>scratchgen explain</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<h2>scratchgen explain</h2>\n"
        f"<p>Each token is coloured by its surprisal (green 0 bits, red {RED_BITS:g} bits or more); hover a token "
        "to see its record.</p>\n"
        '<pre id="panel">hover a token</pre>\n' + "\n".join(body) + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def register(commands, train) -> None:
    """Add ``explain``: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "explain",
        help="why a model gave each token its probability (per-token log P, rank, alternatives, the family's why)",
        description="Explain TEXT token by token, </s> included: log P (natural log), surprisal in bits, rank among "
        "the vocabulary (1 = most probable; ties share the best rank), the top K alternatives, and the family's "
        "why (n-gram: the matched n-gram length and the backoff recursion with its numbers; grammar: the prefix "
        "probability and the Viterbi parse; random: the count and smoothing; RNN: the hidden state's norm). "
        "With MODEL2 both models side by side, with bits(MODEL2) - bits(MODEL) a token.",
    )
    p.add_argument("model", metavar="MODEL", help="a saved model (.npz)")
    p.add_argument("model2", metavar="MODEL2", nargs="?", help="a second model (same tokenizer) to compare with")
    p.add_argument("text", metavar="TEXT", help="the text, or - to read stdin (one sequence a line)")
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object a sequence (JSON Lines) instead of a table; with MODEL2 its records are under "other"',
    )
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page, tokens coloured by surprisal")
    p.add_argument(
        "--top", metavar="K", type=int_in(0, 100), default=5, help="how many alternatives each token lists (default 5)"
    )
    p.add_argument("--label", metavar="L", help="a labelled model: explain P(text | L) (default: the marginal)")
    declare_files(p, inputs=("model", "model2"), outputs=("html",))
    p.set_defaults(func=_explain)
