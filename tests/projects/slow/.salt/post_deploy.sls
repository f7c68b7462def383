{#- After the switch: may be held by the test (see pause.py). #}
{{ cfg.name }}-post-deploy-pause:
  cmd.run:
    - name: python3 pause.py post_deploy
    - cwd: {{ cfg.app_root }}
