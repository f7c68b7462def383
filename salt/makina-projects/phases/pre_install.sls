{#- corpus default pre_install phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import pre_install with context %}
{{ pre_install(cfg) }}
