{#- Build: may be held by the test (see pause.py). #}
{{ cfg.name }}-build-pause:
  cmd.run:
    - name: python3 pause.py build
    - cwd: {{ cfg.app_root }}
