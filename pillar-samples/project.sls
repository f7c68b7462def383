# Pillar of one project: every setting corpus knows, with its default.
#
# A project's settings merge, lowest to highest: corpus's defaults, the env
# defaults (dev/staging/prod), the project's .salt/PILLAR.sample, its private
# pillar (init.sls pushed to git/pillar.git), this pillar
# (makina-projects:NAME), then call arguments (salt-call mc_project.deploy
# myapp keep_releases=3). Only set what differs from the defaults; the schema
# (mc_project/project/schema.py) refuses unknown keys and wrong types in one
# sentence. Strings may reference other settings: "{name}", "{paths.data}",
# "{data.db_name}" ("{{" and "}}" are literal braces).
#
# corpus computes name, projects_root, paths, release_id, commit, app_root,
# user and pillar_hash itself: a pillar cannot set them.

# Where projects live on this host (a minion option or a pillar key).
mc_project:
  projects_root: /srv/projects

makina-projects:
  # The project's name: 1 to 64 letters, digits, '.', '_' or '-'.
  myapp:
    # dev, staging or prod: picks the env defaults and the mode.
    env: prod

    # How releases are made; empty: from env (dev: editable, staging:
    # cooking, prod: final). editable runs from the checkout, cooking builds
    # a release and a bundle, final unpacks a bundle and never builds.
    mode: ""

    # The branch whose pushes deploy; pushes to other branches are kept only.
    deploy_branch: main

    # Successful releases kept on disk, the live one included (1 to 1000).
    keep_releases: 5

    # Failed releases kept, with their logs, under archives/failed (0 to 1000).
    keep_failed: 5

    # Seconds a deploy waits for the one already running (0 to 86400).
    lock_timeout: 60

    # Port of the web process; 0: a stable port in 20000-31999 derived from
    # the name.
    port: 0

    # Address the web process listens on; a container behind its node's
    # proxy needs 0.0.0.0.
    bind: 127.0.0.1

    # Environment variables of the app's processes (names: letters, digits
    # and '_', not starting with a digit). Values are strings, numbers or
    # true/false, never lists or mappings; the processes see strings.
    environment:
      DATABASE_PATH: "{paths.data}/db.sqlite3"
      WORKERS: 4
      DEBUG: false

    # Command of the web process; empty: the Procfile's web: line, else a
    # static server.
    web: ""

    # Directory a static site serves; empty: public/ when present, else the
    # tree root.
    static_dir: ""

    # Health check of a new release before traffic moves to it.
    health:
      # URL path requested: starts with '/', no spaces or control characters.
      path: /health
      # Seconds the release has to answer (greater than 0, at most 3600;
      # defaults: dev 20, staging 30, prod 60).
      timeout: 60
      # HTTP status the answer must have (100 to 599).
      status: 200

    # Final mode: where bundles come from (a cooking target's
    # archives/bundles path or URL); empty: this host's archives/bundles.
    bundle:
      source: http://staging.example.com:8080/bundles/

    # Names an editable deploy keeps in the checkout when it cleans it.
    editable_keep:
      - .venv
      - node_modules
      - __pycache__

    # User the app runs as; empty: the engine chooses (app-NAME as root).
    # A Linux user name: a lowercase letter or '_', then up to 31 lowercase
    # letters, digits, '_' or '-'.
    run_as: ""

    # Seconds the old release may finish in-flight requests after traffic
    # moved to the new one (0 to 3600).
    drain_timeout: 30

    # The app's database, reached through DATABASE_URL: empty or sqlite, a
    # file under data/ (data/db.sqlite3); postgresql, a database and role of
    # the project's own on database_server. Dumped before each deploy into
    # snapshots/<id>/, it rolls back with the code.
    database: ""

    # With database: postgresql, the admin connection URL of the server, such
    # as postgresql://admin:PASSWORD@127.0.0.1:5432/postgres (keep it here,
    # in a pillar, never in the repository).
    database_server: ""

    # How many snapshots (data/ and the database dump) stay, newest first;
    # 0: as many as keep_releases.
    keep_snapshots: 0

    # The project's own values, anything inside; reach them as {data.KEY}.
    data:
      db_name: "{name}"
      admins:
        - ops@example.com
