{#- corpus default post_deploy phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import post_deploy with context %}
{{ post_deploy(cfg) }}
