"""Where an environment's app answers its health checks: the inventory variables
``health_path`` (default ``/``) and ``app_port`` of its host. Site walks and a redeploy's
check of its new container read them here (without the HTTP client the walks need)."""

from mc_project.common.vocabulary import APP_PORT
from mc_project.errors import CorpusError
from mc_project.inventory import host_rows, resolve
from mc_project.inventory.fleet_models import Host

HEALTH_PATH_VAR = "health_path"
APP_PORT_VAR = "app_port"


def health_path_and_port(sess, env):
    """``(path, port)`` of environment ``env``'s app, from its host's inventory variables."""
    host = sess.execute(host_rows.select_hosts(Host.environment_id == env.id)).first()
    values = {}
    if host is not None:
        values, _sources = resolve.host_variables(sess, dict(host._mapping), with_sources=False)
    path = values.get(HEALTH_PATH_VAR) or "/"
    if not isinstance(path, str) or not path.startswith("/"):
        raise CorpusError("Environment {}'s {} must be a path starting with '/'.".format(env.name, HEALTH_PATH_VAR))
    port = values.get(APP_PORT_VAR) or APP_PORT
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise CorpusError("Environment {}'s {} must be a port number.".format(env.name, APP_PORT_VAR))
    return path, port
