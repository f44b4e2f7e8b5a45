{#-
  A trailing window aggregate over the last n rows of a symbol (frame ends at CURRENT ROW), or null
  unless all n rows carry a value: a half-empty window early in history would look like a real figure.
  count_expr defaults to expr; pass e.g. 'y * x' for two-argument aggregates so both must be present.
  dense=true declares that expr is non-null on every row after its first non-null one (closes, returns),
  so "the row n-1 back has a value" proves the window full; a lag() is much cheaper than a windowed count.
-#}
{% macro rolling(agg, expr, n, count_expr=none, dense=false, partition_by='symbol', order_by='date') -%}
{%- set order = 'partition by ' ~ partition_by ~ ' order by ' ~ order_by -%}
{%- set frame = 'over (' ~ order ~ ' rows between ' ~ (n - 1) ~ ' preceding and current row)' -%}
{%- if dense -%}
case when lag({{ count_expr or expr }}, {{ n - 1 }}) over ({{ order }}) is not null then {{ agg }}({{ expr }}) {{ frame }} end
{%- else -%}
case when count({{ count_expr or expr }}) {{ frame }} = {{ n }} then {{ agg }}({{ expr }}) {{ frame }} end
{%- endif -%}
{%- endmacro %}
