{%- from "phasefail.jinja" import step with context %}
{{ step(cfg, "pre_install") }}
