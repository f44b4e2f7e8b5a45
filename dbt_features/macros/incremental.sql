{#-
  Incremental runs. A run that brings the days from var('partition_start') up to date rewrites every row of the
  feature and label models dated on or after `rewrite_from` and reads its inputs from `read_from`
  (models/staging/increment_bounds.sql computes both; every row after them is rewritten too, since a restated
  day moves the later running highs). The lookback, in rows of a symbol, covers the longest label horizon (a
  new row completes the labels that many rows back) and the longest feature window (a rewritten feature needs
  that many rows before it). A model reads with since('read_from') and keeps rows with since('rewrite_from');
  both are `true` on a full build, so the full and the incremental SQL are the same query.
-#}
{% macro lookback_rows() -%}
    {%- set rows = [var('longest_feature_window')] -%}
    {%- for steps in var('horizons').values() -%}{%- do rows.extend(steps) -%}{%- endfor -%}
    {{- rows | max -}}
{%- endmacro %}

{% macro since(bound, column='date') -%}
    {%- if is_incremental() -%}
        {{ column }} >= (select {{ bound }} from {{ ref('increment_bounds') }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
