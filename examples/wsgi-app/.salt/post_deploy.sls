{#- Migrate the persistent data once the new release is live. #}
{{ cfg.name }}-migrate:
  cmd.run:
    - name: python3 migrate.py {{ cfg.paths.data }}
    - cwd: {{ cfg.app_root }}
