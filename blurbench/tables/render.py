"""The table model (cells, footnotes, protocol notes) and its renderers.

Each table is one `Table` rendered four ways: Markdown, LaTeX (booktabs), HTML (what the Snakemake
report embeds) and a CSV that keeps full precision (long format, from the table's summary frame).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path


@dataclass
class Cell:
    text: str
    best: bool = False
    notes: tuple[int, ...] = ()  # footnote numbers


@dataclass
class Table:
    name: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    n_keys: int  # leading key columns (left-aligned, not numbers)
    group_starts: list[int] = field(default_factory=list)  # row indices that start a block
    header_groups: list[tuple[str, int]] | None = None  # spanning first header row (LaTeX, HTML)
    subheader: list[str] | None = None  # second header row under header_groups (LaTeX, HTML)
    legend: str = ""
    footnotes: list[str] = field(default_factory=list)
    protocol: list[str] = field(default_factory=list)


class Footnotes:
    """Numbers reasons in order of first use; the same reason always gets the same number."""

    def __init__(self):
        self.texts: list[str] = []

    def number(self, text: str) -> int:
        if text not in self.texts:
            self.texts.append(text)
        return self.texts.index(text) + 1

    def numbers(self, *texts: str) -> tuple[int, ...]:
        """Footnote numbers of the non-empty `texts`, in order."""
        return tuple(self.number(t) for t in texts if t)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_cell(cell: Cell) -> str:
    text = _md_escape(cell.text)
    if cell.best:
        text = f"**{text}**"
    return f"{text} [{', '.join(map(str, cell.notes))}]" if cell.notes else text


def format_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown: title, table, legend, footnotes and protocol as lists."""
    ncols = len(table.header)
    lines = [f"### {table.title}", "",
             "| " + " | ".join(_md_escape(h) for h in table.header) + " |",
             "|" + "|".join([":--"] * table.n_keys + ["--:"] * (ncols - table.n_keys)) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    lines += ["", table.legend]
    if table.footnotes:
        lines += ["", "Footnotes:", ""] + [f"- [{i}] {_md_escape(t)}" for i, t in enumerate(table.footnotes, 1)]
    if table.protocol:
        lines += ["", "Protocol:", ""] + [f"- {_md_escape(p)}" for p in table.protocol]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"↓": r"$\downarrow$", "↑": r"$\uparrow$", "→": r"$\rightarrow$", "±": r"$\pm$",
                  "ε": r"$\varepsilon$", "σ": r"$\sigma$", "Σ": r"$\Sigma$", "≥": r"$\geq$",
                  "≤": r"$\leq$", "<": r"$<$", ">": r"$>$", "²": r"$^2$", "×": r"$\times$",
                  "μ": r"$\mu$", "∼": r"$\sim$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return "".join(_LATEX_UNICODE.get(ch, ch) for ch in out)


def _tex_cell(cell: Cell) -> str:
    text = latex_escape(cell.text)
    if cell.best:
        text = rf"\textbf{{{text}}}"
    return f"{text}$^{{{','.join(map(str, cell.notes))}}}$" if cell.notes else text


def format_latex(table: Table) -> str:
    """A booktabs `table` float; key columns repeat only at the start of a block."""
    ncols = len(table.header)
    lines = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}",
             rf"\label{{tab:{table.name}}}",
             r"\begin{tabular}{" + "l" * table.n_keys + "r" * (ncols - table.n_keys) + "}", r"\toprule"]
    header = table.header
    if table.header_groups:
        spans, rules, col = [], [], 1
        for label, span in table.header_groups:
            spans.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(label)}}}" if label else "")
            if label:
                rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines += [" & ".join(spans) + r" \\", " ".join(rules)]
        header = table.subheader
    lines += [" & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        if i in table.group_starts and i > 0:
            lines.append(r"\midrule")
        show_first = not table.group_starts or i in table.group_starts
        keys = ["" if k == 0 and not show_first else latex_escape(c.text)
                for k, c in enumerate(row[:table.n_keys])]
        lines.append(" & ".join(keys + [_tex_cell(c) for c in row[table.n_keys:]]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip\footnotesize", latex_escape(table.legend) + r"\par"]
    lines += [rf"$^{{{i}}}$~{latex_escape(t)}\par" for i, t in enumerate(table.footnotes, 1)]
    lines += [latex_escape(p) + r"\par" for p in table.protocol]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _html_cell(cell: Cell) -> str:
    text = html.escape(cell.text)
    if cell.best:
        text = f"<strong>{text}</strong>"
    for n in cell.notes:
        text += f'<sup><a href="#fn{n}">{n}</a></sup>'
    return f"<td>{text}</td>"


def format_html(table: Table) -> str:
    """A self-contained HTML page (what the Snakemake report embeds)."""
    style = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
             "th,td{padding:.25em .6em;text-align:right;white-space:nowrap}"
             "th{border-bottom:1px solid #000}tr.block td{border-top:1px solid #888}"
             "td.key{text-align:left}caption{font-weight:bold;margin-bottom:.5em}p,li{font-size:90%}")
    head, header = "", table.header
    if table.header_groups:
        head += "<tr>" + "".join(f'<th colspan="{span}">{html.escape(label)}</th>'
                                 for label, span in table.header_groups) + "</tr>"
        header = table.subheader
    head += "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = []
    for i, row in enumerate(table.rows):
        cls = ' class="block"' if i in table.group_starts and i > 0 else ""
        keys = "".join(f'<td class="key">{html.escape(c.text)}</td>' for c in row[:table.n_keys])
        body.append(f"<tr{cls}>{keys}" + "".join(_html_cell(c) for c in row[table.n_keys:]) + "</tr>")
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(table.title)}</title>",
             f"<style>{style}</style></head><body>",
             f"<table><caption>{html.escape(table.title)}</caption><thead>{head}</thead>",
             "<tbody>" + "\n".join(body) + "</tbody></table>", f"<p>{html.escape(table.legend)}</p>"]
    if table.footnotes:
        parts.append("<ol>" + "".join(f'<li id="fn{i}">{html.escape(t)}</li>'
                                      for i, t in enumerate(table.footnotes, 1)) + "</ol>")
    if table.protocol:
        parts.append("<p>Protocol:</p><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in table.protocol)
                     + "</ul>")
    return "\n".join(parts) + "\n</body></html>\n"


def format_csv(summary) -> str:
    """Long format at full precision; n/a where a mean or std does not exist."""
    return summary.to_csv(index=False, na_rep="n/a", float_format="%.10g")


def atomic_write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_table(table: Table, summary, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [atomic_write_text(out_dir / f"{table.name}.csv", format_csv(summary)),
            atomic_write_text(out_dir / f"{table.name}.md", format_markdown(table)),
            atomic_write_text(out_dir / f"{table.name}.tex", format_latex(table)),
            atomic_write_text(out_dir / f"{table.name}.html", format_html(table))]
