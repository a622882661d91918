"""CSV cells that a spreadsheet shows as text, never runs as a formula ("CSV injection").

Spreadsheet programs (Excel, LibreOffice, Google Sheets) read a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula, and some also after a leading tab or carriage return: an
imported product called ``=HYPERLINK("http://evil.example","x")`` would become a live link in
the export that the next person opens. The rule, for every CSV the package writes and for the
host's tasks (``writer.writerow(csvsafe.row([...]))``):

- a **string** that starts with one of ``= + - @``, a tab or a carriage return is written with
  a leading apostrophe (``'=HYPERLINK(...)``), which spreadsheets show as the text itself;
- **numbers** (int, float, Decimal) and everything else that is not a string (None, dates, bools)
  are written as they are: ``-3`` from an int stays the number ``-3``. Only text is escaped,
  because only text can carry something someone typed, and a "-3" that arrived as text cannot
  be told from the start of a formula (write the number, not its text, to keep it a number).

The apostrophe is visible to programs that read the file as plain CSV; that is the usual price
(OWASP's advice) and the reason the rule is applied to exports for people, not to data files
read back by programs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """``value`` as a CSV cell: a string that starts like a formula gets a leading ``'``;
    anything else (numbers included) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def row(values: Iterable[Any]) -> list[Any]:
    """Every cell of ``values`` through :func:`cell`, for ``csv.writer(...).writerow``."""
    return [cell(value) for value in values]
