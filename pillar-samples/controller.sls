# The controller's options: the salt-master option "corpus:", every key with
# its default. They are master options, not pillar: put them in the master's
# configuration (e.g. /etc/salt/master.d/corpus.conf; corpus-controller init
# writes them for you). mc_project.controller.config.controller_settings checks
# them: an unknown key or a wrong type is one sentence. Leave a key out, or
# empty (~), to get its default.

corpus:
  # Directory of a controller made by corpus-controller init: the inventory
  # and the wheelhouse go under it. Empty: the master's cachedir holds them.
  root: /srv/controller

  # Inventory database (SQLAlchemy URL: SQLite or PostgreSQL). Empty:
  # sqlite:///<root>/var/lib/corpus/inventory.sqlite, or under the
  # master's cachedir when there is no root.
  db_url: postgresql://corpus:secret@db.example.com/corpus

  # Address the compute nodes and containers reach this master at (an IP
  # address or a host name). Empty: this host's first non-loopback IPv4.
  master_address: 192.0.2.1

  # Where the wheels installed on nodes and containers are kept (absolute).
  # Empty: <root>/wheelhouse, or <cachedir>/wheelhouse.
  wheelhouse: /srv/controller/wheelhouse

  # Key file the inventory's secrets (root passwords, SSH private keys) are
  # encrypted with (0600, outside the database; corpus-controller init makes it,
  # corpus-controller rotate-key replaces it). Empty:
  # <root>/etc/corpus/secrets.key.
  secrets_key: /srv/controller/etc/corpus/secrets.key

  # DNS domain environments are named under: <environment name>.<domain>.
  domain: corpus.example.com

  # Hours a redeployed environment's old container is kept, stopped, before
  # mc_cloud.destroy_retired destroys it (0: at its next run). Empty: 24.
  redeploy_keep_hours: 24

  # PowerDNS API the controller writes the environments' records with.
  dns:
    # API URL; empty: no DNS records are written.
    api_url: http://127.0.0.1:8081/api/v1
    # API key (a secret: it never reaches a minion's pillar).
    api_key: change-me
    # The PowerDNS server id.
    server_id: localhost
    # Zone the records go in; empty: <domain>. (with the final dot).
    zone: corpus.example.com.
    # Time to live of the records, in seconds (positive).
    ttl: 300

  # Mail relay for the messages the controller sends (credentials, reports).
  smtp:
    # Relay host; empty: no mail is sent.
    host: smtp.example.com
    # Relay port (1 to 65535).
    port: 25
    # Sender address; empty: corpus@<this host's FQDN>.
    sender: corpus@example.com
    # Seconds to wait for the relay (positive).
    timeout: 10

  # The golden LXC image containers are cloned from.
  lxc:
    # Debian mirror the image is built from.
    mirror: http://deb.debian.org/debian
    # Debian suite.
    suite: bookworm
    # Disk size of a container, in MB (positive).
    disk_size_mb: 2048
    # Keep the next environment's container ready on each node (true or false).
    spare: true

# Also in the master's configuration: serve each minion its pillar from the
# inventory, and never the master's options (the DNS API key) as pillar.
ext_pillar:
  - corpus_inventory: {}
pillar_opts: false
