{#- corpus default configure phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import configure with context %}
{{ configure(cfg) }}
