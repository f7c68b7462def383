{#- corpus default deploy phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import deploy with context %}
{{ deploy(cfg) }}
