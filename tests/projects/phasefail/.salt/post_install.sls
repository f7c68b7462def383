{%- from "phasefail.jinja" import step with context %}
{{ step(cfg, "post_install", data_file="phases.txt") }}
