{%- from "phasefail.jinja" import step with context %}
{{ step(cfg, "rollback", trace="phasefail-rollback.trace") }}
