"""What every verb gets through ``ctx.obj``: the settings, the output, the API client,
and the way a verb that starts a job follows it."""

import typer

from . import names, progress
from .client import Client
from .errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from .output import Output


class State:
    def __init__(self, settings, transport=None):
        self.settings = settings
        self.output = Output(settings.json)
        self.transport = transport  # tests hand an httpx transport here
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = Client(self.settings.require_url(), self.settings.token, transport=self.transport)
        return self._client

    def close(self):
        if self._client is not None:
            self._client.close()

    def env_name(self, given=None):
        name = given or self.settings.env
        if not name:
            raise CliError("No environment: name one, or set env in the configuration file or CORPUS_ENV",
                           EXIT_BAD_INPUT)
        return names.env_name(name)

    def run_job(self, answer, wait=True, render=None, show=True, also_done=()):
        """After a 202 ``{"job_id", "location"}``: follow the job (unless ``wait`` is off)
        and print how it ended (unless ``show`` is off: the verb prints more after it);
        a failed job is exit 1 with one sentence. ``also_done``: final statuses that are
        success too (an undo ends ``undone``)."""
        # 202 Accepted starts a job; a 200 is the record of work done at once (its own
        # "job_id", if any, is no job of the API).
        started = self.client.last_status == 202 or (isinstance(answer, dict) and "location" in answer)
        job_id = answer.get("job_id") if started and isinstance(answer, dict) else None
        if not job_id:
            final = {"job_id": None, "status": "success", "result": answer}
            if self.output.json:
                self.output.document(answer)
            elif render:
                render(self.output, final)
            elif isinstance(answer, dict):
                self.output.fields(answer)
            return final
        if not wait:
            self.output.result(answer, lambda data: self.output.note(
                f"Job {job_id} started; watch it with: corpus job {job_id} --follow"))
            return answer
        self.output.notes.print(f"Job {job_id}", style="bold", markup=False)
        final = progress.follow(self.client, job_id, self.output.err if self.output.json else self.output.out)
        if not progress.succeeded(final) and str(final.get("status", "")).lower() not in also_done:
            raise CliError(progress.failure_reason(final), EXIT_FAILED, data=final)
        if not show:
            return final
        self.output.result(final, lambda data: (render or _render_result)(self.output, data))
        return final


def _render_result(output, final):
    output.note(f"Job {final['job_id']} {final.get('status')}.")
    result = final.get("result")
    if isinstance(result, dict) and result:
        output.fields(result)


def state_of(ctx: typer.Context) -> State:
    return ctx.obj
