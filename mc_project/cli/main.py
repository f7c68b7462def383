"""The ``corpus`` command: the Typer app, its global options, and ``main()``, which turns
every error into one sentence on stderr and an exit code (0 done, 1 failed, 2 bad
input, 3 not allowed) -- never a traceback."""

import json
import sys

import typer

try:  # typer 0.26 and later carry their own click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as click_errors

from . import (auth, chat, checks, compliance, detectors, dns, envs, images, inventory, jobs, kv, projects, push, runs,
               sites, walks)
from .config import load
from .errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError, sentence
from .state import State

app = typer.Typer(
    name="corpus",
    help="Deploy with git push and manage environments on a corpus controller.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options every verb takes, wherever they are on the command line.
GLOBAL_FLAGS = ("--json",)
GLOBAL_OPTIONS = ("--url", "--token")

EXITS = tuple({typer.Exit, getattr(click_errors, "Exit", typer.Exit)})
ABORTS = tuple({typer.Abort, getattr(click_errors, "Abort", typer.Abort), KeyboardInterrupt, EOFError})

# Tests hand an httpx transport here to run the verbs without a server.
TRANSPORT = None


@app.callback()
def options(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout, for scripts."),
    url: str = typer.Option(None, "--url", help="The controller's URL (else CORPUS_URL, else the config file)."),
    token: str = typer.Option(None, "--token", help="The API token (else CORPUS_TOKEN, else `corpus login`'s)."),
):
    settings = load({"url": url, "token": token})
    settings.json = json_output
    ctx.obj = State(settings, transport=TRANSPORT)
    ctx.call_on_close(ctx.obj.close)


for module in (auth, envs, projects, jobs, push, inventory, runs, detectors, walks, checks, kv, dns, compliance, chat,
               sites, images):
    module.register(app)


def hoist_global_options(argv):
    """Move ``--json``, ``--url X`` and ``--token X`` in front of the verb, so that
    ``corpus status web --json`` works as ``corpus --json status web`` does."""
    front, rest = [], []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest.append(arg)
            rest.extend(args)
            break
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif name in GLOBAL_OPTIONS:
            front.append(arg)
            if "=" not in arg:
                value = next(args, None)
                if value is not None:
                    front.append(value)
        else:
            rest.append(arg)
    return front + rest


def run(argv=None):
    """Run the command line ``argv``; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = hoist_global_options(argv)
    json_mode = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="corpus", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except CliError as exc:
        return fail(exc.message, exc.exit_code, json_mode, exc.status, exc.data)
    except click_errors.NoArgsIsHelpError as exc:
        sys.stdout.write((exc.ctx.get_help() if exc.ctx else "Usage: corpus VERB ...") + "\n")
        return EXIT_BAD_INPUT
    except click_errors.UsageError as exc:
        message = exc.format_message()
        verb = exc.ctx.command_path.partition(" ")[2] if exc.ctx is not None else ""
        if verb:
            message = f"{verb}: {message}"
        return fail(message, EXIT_BAD_INPUT, json_mode)
    except click_errors.ClickException as exc:
        return fail(exc.format_message(), exc.exit_code or EXIT_FAILED, json_mode)
    except EXITS as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # Typer turns a Ctrl-C into a silent Exit(130)
            return fail("Interrupted", exc.exit_code, json_mode)
        return exc.exit_code
    except ABORTS:
        return fail("Interrupted", 130, json_mode)
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # the promise: one sentence, never a traceback
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return fail(f"Unexpected error ({type(exc).__name__}): {reason}", EXIT_FAILED, json_mode)


def fail(message, code, json_mode, status=None, data=None):
    message = sentence(message)
    if json_mode:
        error = {"message": message, "exit_code": code}
        if status is not None:
            error["status"] = status
        document = dict(data or {})
        document["error"] = error
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stderr.write(f"corpus: {message}\n")
    return code


def main(argv=None):
    sys.exit(run(argv))
