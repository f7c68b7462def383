{#- corpus default backup phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import backup with context %}
{{ backup(cfg) }}
