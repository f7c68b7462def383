"""Container images: ``images build NAME``, ``images list``, ``images show REF``,
``images log REF``, ``images rm REF`` (REF: ``NAME`` or ``NAME:VERSION``)."""

import os

import typer

from .errors import EXIT_BAD_INPUT, CliError
from .state import state_of

images_app = typer.Typer(name="images", help="Container images environments are cloned from.",
                         no_args_is_help=True)
COLUMNS = ["name", "version", "status", "built", "size_mb", "nodes", "environments"]
SHOW_KEYS = ["ref", "status", "current", "states", "states_digest", "digest", "who", "created", "built", "size_mb",
             "nodes", "environments", "job_id", "message"]
WAIT = typer.Option(True, "--wait/--no-wait", help="Follow the job to its end (default), or print its id.")


def register(app):
    images_app.command("build")(build)
    images_app.command("list")(list_images)
    images_app.command("show")(show)
    images_app.command("log")(log)
    images_app.command("rm")(remove)
    app.add_typer(images_app, name="images")


def build(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The image (its next version is built)."),
    states: str = typer.Option(None, "--states", metavar="DIR",
                               help="A Salt state tree: a directory on the controller (default: the golden "
                                    "image as it is)."),
    node: str = typer.Option(None, "--node", help="Build it on this node only (default: every active node)."),
    wait: bool = WAIT,
):
    """Build the next version of an image from a state tree, and follow the job."""
    state = state_of(ctx)
    body = {"name": name}
    if states:
        if not os.path.isabs(states):
            raise CliError(f"The state tree {states!r} must be an absolute path on the controller", EXIT_BAD_INPUT)
        body["states"] = states
    if node:
        body["node"] = node
    answer = state.client.post("/v1/images", body)
    return state.run_job(answer, wait=wait, render=lambda output, data: output.note(
        "Image {} built (job {}); its log: corpus images log {}.".format(
            (data.get("result") or {}).get("image") or name, data["job_id"], name)))


def _row(item):
    return dict(item, built=(item.get("built") or "")[:19].replace("T", " "),
                status=item["status"] + (" (current)" if item.get("current") else ""))


def list_images(ctx: typer.Context, name: str = typer.Argument(None, metavar="[NAME]", help="Only this image.")):
    """Every image version: status, when built, size, nodes, environments using it."""
    state = state_of(ctx)
    params = {"name": name} if name else {}
    page = state.client.get("/v1/images", limit=500, **params)
    state.output.result(page, lambda data: state.output.table(
        [_row(item) for item in data.get("items") or []], columns=COLUMNS, empty="No images."))


def show(ctx: typer.Context, ref: str = typer.Argument(..., metavar="NAME[:VERSION]")):
    """One image version (NAME: its current one)."""
    state = state_of(ctx)
    found = state.client.get(f"/v1/images/{ref}")
    state.output.result(found, lambda data: state.output.fields(data, SHOW_KEYS))


def log(ctx: typer.Context, ref: str = typer.Argument(..., metavar="NAME[:VERSION]")):
    """An image version's build log (a failed build's too)."""
    state = state_of(ctx)
    found = state.client.get(f"/v1/images/{ref}/log")

    def render(data):
        state.output.note("Image {}: {}{}".format(data["ref"], data["status"],
                                                  " ({})".format(data["message"]) if data.get("message") else ""))
        state.output.raw((data.get("log") or "").rstrip("\n") or "(no log)")

    state.output.result(found, render)


def remove(ctx: typer.Context, ref: str = typer.Argument(..., metavar="NAME[:VERSION]",
                                                        help="A version, or NAME for every version.")):
    """Remove an image version from its nodes (refused while an environment uses it)."""
    state = state_of(ctx)
    answer = state.client.delete(f"/v1/images/{ref}")
    state.output.result(answer, lambda data: state.output.note("Removed {}.".format(
        ", ".join(row["ref"] for row in data.get("removed") or []) or "nothing")))
