{#- corpus default rollback phase: the macro of the same name. #}
{%- from "makina-projects/macros.jinja" import rollback with context %}
{{ rollback(cfg) }}
