{#- The test app's migration: the database it names, then its file or its credentials. #}
{{ cfg.name }}-migrate:
  cmd.run:
    - name: python3 migrate.py {{ cfg.database or "sqlite" }} {{ cfg.paths.data }}/db.sqlite3 {{ cfg.paths.supervisor }}/database.json
    - cwd: {{ cfg.app_root }}
