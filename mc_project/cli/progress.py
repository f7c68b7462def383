"""A job's steps as they happen, from its event stream: one progress bar per step on a
terminal (rich), one plain line per step change otherwise (pipes, CI, ``--json``). A run
on the inventory adds one line per host event (a state's or task's result on a host)
and, at its end, the summary per host (a recap, as Ansible prints one)."""

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import DONE_STATUSES
from .errors import CliError

RUNNING = ("running", "started", "pending")
STYLES = {"success": "green", "done": "green", "failed": "red", "undo_failed": "red", "interrupted": "red",
          "undone": "yellow", "undoing": "yellow", "skipped": "dim"}
LOG_LINES_SHOWN = 20
HOST_STYLES = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red", "skipped": "dim"}
RECAP_COLUMNS = ("ok", "changed", "failed", "unreachable", "skipped")


class StepProgress:
    """Shows ``step`` events; ``live`` draws rich bars, otherwise plain lines."""

    def __init__(self, console, live):
        self.console = console
        self.live = live
        self.tasks = {}
        self.failed_logs = []
        self.progress = None
        if live:
            self.progress = Progress(
                SpinnerColumn(finished_text=" "),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=console,
            )

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()
        for step, log in self.failed_logs:
            self.console.print(f"{step} log:", style="bold red", markup=False)
            for line in log[-LOG_LINES_SHOWN:]:
                self.console.print(f"  {line}", markup=False)

    def step(self, data):
        if not isinstance(data, dict):
            return
        # The API sends the step's index as "step" and its name as "name".
        step = str(data.get("name") or data.get("step") or "?")
        status = str(data.get("status") or "").lower()
        seconds = data.get("seconds")
        log = data.get("log")
        if status in ("failed", "undo_failed", "interrupted") and log:
            lines = log if isinstance(log, list) else str(log).splitlines()
            self.failed_logs.append((step, [line for line in lines if str(line).strip()]))
        if self.progress:
            self._bar(step, status, seconds)
        else:
            timing = f" {seconds:.1f}s" if isinstance(seconds, (int, float)) and status not in RUNNING else ""
            self.console.print(f"step {step} {status}{timing}", markup=False)

    def host(self, data):
        """One host event: ``HOST STATUS: TASK -- why`` (the why of failures only)."""
        if not isinstance(data, dict):
            return
        status = str(data.get("status") or "?")
        line = f"{data.get('host') or '?'} {status}"
        if data.get("task"):
            line += f": {data['task']}"
        if data.get("message") and status in ("failed", "unreachable"):
            line += f" -- {data['message']}"
        self.console.print(line, style=HOST_STYLES.get(status) if self.live else None, markup=False)

    def recap(self, result):
        """The summary per host of a run's result (``{"hosts": {name: counts}}``), when it has one."""
        hosts = result.get("hosts") if isinstance(result, dict) else None
        if not isinstance(hosts, dict) or not hosts:
            return
        dry = " (dry run: nothing was changed)" if result.get("dry_run") else ""
        self.console.print(f"Recap{dry}:", style="bold", markup=False)
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for column in ("host", "status") + RECAP_COLUMNS:
            table.add_column(column.upper())
        for name in sorted(hosts):
            row = hosts[name] if isinstance(hosts[name], dict) else {}
            table.add_row(name, str(row.get("status", "?")), *(str(row.get(key, 0)) for key in RECAP_COLUMNS))
        self.console.print(table)

    def _bar(self, step, status, seconds):
        style = STYLES.get(status, "")
        label = f"[{style}]{status}[/]" if style else status
        if isinstance(seconds, (int, float)) and status not in RUNNING:
            label += f" {seconds:.1f}s"
        finished = status not in RUNNING
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=None, status=label)
        task = self.tasks[step]
        if finished:
            self.progress.update(task, total=1, completed=1, status=label)
            self.progress.stop_task(task)
        else:
            self.progress.update(task, status=label)


def follow(client, job_id, console, live=None):
    """Watch job ``job_id`` to its end; return its ``{"status", "result"}``."""
    live = console.is_terminal if live is None else live
    final = None
    with StepProgress(console, live) as steps:
        try:
            for event, data in _events_or_stop(client, job_id):
                if event == "step":
                    steps.step(data)
                elif event == "host":
                    steps.host(data)
                elif event == "end":
                    final = data if isinstance(data, dict) else {"status": str(data)}
                    steps.recap(final.get("result"))
                    break
        except KeyboardInterrupt:  # Ctrl-C while an event was being shown, not awaited
            raise _stopped_watching(job_id) from None
        except CliError as exc:
            if exc.status is not None or exc.exit_code == 130:  # the API said no, or Ctrl-C
                raise
            final = None  # the stream broke off: the job's record says how it ended
    if final is None:
        job = client.wait_job(job_id)
        final = {"status": job.get("status"), "result": job.get("result")}
        StepProgress(console, False).recap(final["result"])  # a run's summary, read from its record
    final.setdefault("result", None)
    final["job_id"] = job_id
    return final


def _events_or_stop(client, job_id):
    try:
        yield from client.events(job_id)
    except KeyboardInterrupt:
        raise _stopped_watching(job_id) from None


def _stopped_watching(job_id):
    return CliError(f"Stopped watching job {job_id}, which goes on: corpus job {job_id} --follow "
                    "watches it again", 130)


def succeeded(final):
    return str(final.get("status", "")).lower() in DONE_STATUSES


def _message(value):
    if isinstance(value, dict):
        value = value.get("error") or value.get("message") or value.get("comment") or ""
        return _message(value)
    return str(value or "")


def failure_reason(final):
    """One sentence on why a job failed: its ``error``, else what its result says."""
    reason = _message(final.get("error")) or _message(final.get("result"))
    reason = " ".join(reason.split()).rstrip(".")
    text = f"Job {final.get('job_id')} {final.get('status') or 'failed'}"
    return f"{text}: {reason}" if reason else text
