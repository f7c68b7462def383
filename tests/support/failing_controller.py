"""A real controller whose step ``fail_at`` fails before it runs (its undo is kept): the
fault injected at each step of a job in the controller's tests."""

from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError


class FailingController(Controller):
    """The real controller, except that step ``fail_at`` raises before it runs."""

    fail_at = None

    def registry(self):
        registry = super().registry()
        _do, undo = registry[self.fail_at]

        def injected(ctx):
            raise CorpusError("injected failure")
        registry[self.fail_at] = (injected, undo)
        return registry
