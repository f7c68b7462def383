{#- corpus default gather_variables phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import gather_variables with context %}
{{ gather_variables(cfg) }}
