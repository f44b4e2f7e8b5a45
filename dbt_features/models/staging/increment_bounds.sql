-- One row: the dates an incremental run rewrites from and reads from (macros/incremental.sql). Each symbol's
-- first row whose label the new days complete lies lookback rows before its first row on or after
-- var('partition_start'); rewrite_from is the earliest of these over the symbols, so all symbols share one date
-- cut and the cross-sectional ranks of a rewritten date see every symbol. read_from lies lookback rows (and at
-- least lookback days, for the on-chain series' calendar windows) before rewrite_from. Without
-- partition_start both are the first date: everything is rebuilt.
{%- set lookback = lookback_rows() %}
{%- set start = var('partition_start') %}
with rows_before_start as (
    select
        date,
        row_number() over (partition by symbol order by date) as row_index,
        {%- if start %}
        count(*) filter (where date < date '{{ start }}') over (partition by symbol) as before_start
        {%- else %}
        0 as before_start
        {%- endif %}
    from {{ ref('stg_prices') }}
),

rewrite as (
    select min(date) as rewrite_from from rows_before_start where row_index > before_start - {{ lookback }}
),

rows_before_rewrite as (
    select
        p.date,
        row_number() over (partition by p.symbol order by p.date) as row_index,
        count(*) filter (where p.date < r.rewrite_from) over (partition by p.symbol) as before_rewrite
    from {{ ref('stg_prices') }} as p
    cross join rewrite as r
)

select
    r.rewrite_from,
    least(
        (select min(date) from rows_before_rewrite where row_index > before_rewrite - {{ lookback }}),
        r.rewrite_from - interval {{ lookback }} days
    ) as read_from
from rewrite as r
