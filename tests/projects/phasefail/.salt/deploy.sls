{%- from "phasefail.jinja" import step with context %}
{{ step(cfg, "deploy") }}
