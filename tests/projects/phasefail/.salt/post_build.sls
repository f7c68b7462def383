{%- from "phasefail.jinja" import step with context %}
{{ step(cfg, "post_build") }}
