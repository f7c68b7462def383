{#- corpus default post_build phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import post_build with context %}
{{ post_build(cfg) }}
