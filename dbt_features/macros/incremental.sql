{#-
  Incremental runs. A run that brings the days from var('partition_start') up to date rewrites every row of the
  feature and label models dated on or after `rewrite_from` and reads its inputs from `read_from`
  (models/staging/increment_bounds.sql computes both; every row after them is rewritten too, since a restated
  day moves the later running highs). The stored models keep rows with since('rewrite_from'); the models
  inlined into them read their inputs with since('read_from'). The lookback, in rows of a symbol, covers the longest label horizon (a
  new row completes the labels that many rows back) and the longest feature window (a rewritten feature needs
  that many rows before it). Both are `true` on a full build (no partition_start, --full-refresh, or a stored
  table missing), so the full and the incremental SQL are the same query.
-#}
{% macro lookback_rows() -%}
    {%- set rows = [var('longest_feature_window')] -%}
    {%- for steps in var('horizons').values() -%}{%- do rows.extend(steps) -%}{%- endfor -%}
    {{- rows | max -}}
{%- endmacro %}

{#- is_incremental() only knows the model being built; the inlined (ephemeral) models ask about the stored ones. -#}
{% macro incremental_run() -%}
    {%- if not execute or flags.FULL_REFRESH or not var('partition_start') -%}{{ return(false) }}{%- endif -%}
    {%- for schema, name in [('features', 'features'), ('labels', 'forward_returns')] -%}
        {%- if adapter.get_relation(database=target.database, schema=schema, identifier=name) is none -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}

{% macro since(bound, column='date') -%}
    {%- if incremental_run() -%}
        {{ column }} >= (select {{ bound }} from {{ ref('increment_bounds') }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
