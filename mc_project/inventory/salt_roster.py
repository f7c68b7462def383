"""A salt-ssh roster of the hosts that run no minion: ``{name: {host, port, user}}``.

Written to a file (``corpus-inventory --roster > /etc/salt/roster``), salt-ssh
reaches those hosts by name. Hosts without an address are left out: salt-ssh
would have nowhere to go.
"""

from mc_project.inventory import host_rows


def roster(sess, tenant_ids):
    found = {}
    for tenant_id in sorted(tenant_ids):
        for host in host_rows.rows(sess, host_rows.in_tenant(tenant_id), host_rows.MINION_ID.is_(None)):
            if not host["address"]:
                continue
            entry = {"host": host["address"]}
            if host["ssh_port"]:
                entry["port"] = host["ssh_port"]
            if host["ssh_user"]:
                entry["user"] = host["ssh_user"]
            found[host["name"]] = entry
    return found
