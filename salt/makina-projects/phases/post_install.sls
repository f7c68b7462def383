{#- corpus default post_install phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import post_install with context %}
{{ post_install(cfg) }}
