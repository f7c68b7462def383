"""What a verb prints: JSON for scripts (``--json``), tables and lines for people.

With ``--json`` stdout holds exactly one JSON document; progress and notes go to stderr.
"""

import json
import sys

from rich.console import Console
from rich.table import Table


class Output:
    def __init__(self, json_mode=False):
        self.json = json_mode
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    @property
    def notes(self):
        """Where lines for people go: stdout, or stderr when stdout is JSON."""
        return self.err if self.json else self.out

    def note(self, text, style=None):
        self.notes.print(text, style=style, markup=False)

    def raw(self, text):
        """Text exactly as is (keys, log lines): no wrapping, no markup."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def document(self, data):
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        sys.stdout.flush()

    def result(self, data, render):
        """``data`` as JSON, or ``render(data)`` for people."""
        if self.json:
            self.document(data)
        else:
            render(data)

    def table(self, items, columns=None, empty="Nothing."):
        if not items:
            self.note(empty)
            return
        columns = columns or _columns_of(items)
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column.upper().replace("_", " "))
        for item in items:
            table.add_row(*(display(item.get(column)) for column in columns))
        self.out.print(table)

    def fields(self, record, keys=None):
        """One record as ``key: value`` lines."""
        keys = keys or list(record)
        width = max((len(key) for key in keys), default=0)
        for key in keys:
            if key in record:
                self.out.print(f"{key:<{width}}  {display(record[key])}", markup=False)


def display(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(display(each) for each in value) or "-"
    if isinstance(value, dict):
        if "name" in value:
            return display(value["name"])
        return ", ".join(f"{key}={display(each)}" for key, each in value.items()) or "-"
    return str(value)


def _columns_of(items):
    columns = []
    for item in items:
        for key in item:
            if key not in columns:
                columns.append(key)
    return columns
