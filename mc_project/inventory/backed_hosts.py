"""Every compute node and environment is a host of the inventory, from the moment
its row is made to the moment it is deleted.

The controller makes nodes and environments with the ORM (``inventory:add_node``,
``env:register``); an ``after_insert`` event on those two classes adds the host in
the same transaction, so a rolled-back step leaves no host behind. Deleting a node
or an environment, by the ORM or by a bulk ``DELETE``, removes its host through the
foreign key's ``ON DELETE CASCADE``. ``adopt_missing`` makes the hosts of rows
inserted without the ORM (bulk loads, an inventory older than the hosts table).
"""

from sqlalchemy import event, insert

from mc_project.inventory.fleet_models import Host
from mc_project.inventory.models import ComputeNode, Environment, utcnow

HOSTS = Host.__table__


def _host_of_node(_mapper, connection, node):
    connection.execute(insert(HOSTS).values(name=node.name, kind="node", node_id=node.id, created=utcnow()))


def _host_of_environment(_mapper, connection, env):
    connection.execute(insert(HOSTS).values(name=env.name, kind="environment", environment_id=env.id,
                                            created=utcnow()))


event.listen(ComputeNode, "after_insert", _host_of_node)
event.listen(Environment, "after_insert", _host_of_environment)

