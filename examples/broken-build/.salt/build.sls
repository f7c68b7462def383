{#- A build that fails, to show corpus rolling back: copy this folder over
    examples/wsgi-app and push. #}
{{ cfg.name }}-broken-build:
  cmd.run:
    - name: 'echo "compiling assets..."; echo "assets/main.scss: undefined variable" >&2; exit 1'
    - cwd: {{ cfg.app_root }}
