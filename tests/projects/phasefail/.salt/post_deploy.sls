{%- from "phasefail.jinja" import step with context %}
{{ step(cfg, "post_deploy", data_file="phases.txt") }}
