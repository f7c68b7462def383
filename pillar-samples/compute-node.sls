# A compute node: the options it is linked with, and the minion options
# linking writes on it. Nothing here is read as pillar: the first part is
# what you give salt-run mc_cloud.link_node (as keyword arguments), the
# second what link_node writes into the node's minion configuration
# (<prefix>/etc/salt/minion) and mc_lxc falls back on.
# mc_project/node/schema.py describes both.
#
#   salt-run mc_cloud.link_node 192.0.2.10 user=root key=/root/.ssh/id_ed25519 \
#       name=node1 slots=20 subnet=10.20.0.0/24 nat_ports=40000-40999

link_node:
  # Address or DNS name the controller reaches the node at over SSH (required).
  host: 192.0.2.10
  # SSH user that installs corpus there (root, or one with sudo).
  user: root
  # SSH private key on the controller; empty: the SSH agent and default keys.
  key: /root/.ssh/id_ed25519
  # SSH port.
  port: 22
  # Name of the node in the inventory (letters, digits, '.', '_', '-');
  # empty: its host.
  name: node1
  # How many environments (containers) the node may hold (0 to 100000).
  slots: 20
  # IPv4 network of the node's containers (/8 to /29); empty: one the
  # controller picks that overlaps no other node's.
  subnet: 10.20.0.0/24
  # Port of the node's HTTP proxy, which routes each environment's domain to
  # its container.
  http_port: 80
  # Where corpus lives on the node: venv, wheelhouse, minion config, state.
  prefix: /srv/corpus
  # Where the node keeps its LXC containers.
  lxc_path: /var/lib/lxc
  # DNS name of the node; empty: its host when that is a name.
  dns_name: node1.example.com
  # Bridge the containers are plugged into (1 to 15 characters).
  bridge: corpusbr0
  # nftables tables (ip and bridge) holding the node's NAT and firewall;
  # empty: the node's own, corpus_<name>_<6 hex digits of its hash>.
  nft_table: corpus_node1
  # Node ports NATed to the containers' SSH, one per container
  # (MIN-MAX within 1024-65535).
  nat_ports: 40000-40999

# The node's minion options (written by link_node from the options above).
mc_lxc:
  # = link_node's lxc_path.
  lxc_path: /var/lib/lxc
  # Where the proxy's routes and the saved port mappings live:
  # <prefix>/var/lib/node (default without link_node: /var/lib/corpus/node).
  state_dir: /srv/corpus/var/lib/node
  # = link_node's nft_table (default without link_node: corpus).
  nft_table: corpus_node1
