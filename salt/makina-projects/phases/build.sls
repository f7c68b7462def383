{#- corpus default build phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import build with context %}
{{ build(cfg) }}
