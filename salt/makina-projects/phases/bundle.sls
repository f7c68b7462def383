{#- corpus default bundle phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import bundle with context %}
{{ bundle(cfg) }}
