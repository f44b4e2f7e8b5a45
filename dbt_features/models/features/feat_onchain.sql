-- On-chain features for crypto symbols, as of what was public at the end of each day.
--
-- Each metric's feature is computed on its own daily series with calendar-day windows (RANGE frames
-- ending at the current day, full coverage required). A series value at day t becomes usable once it
-- and every earlier value of the series were public (running max of known_at) and day t has begun;
-- a price row at date d then takes, by an ASOF join, the latest value usable before d's end of day.
-- Values older than var('onchain_max_age_days') are not carried forward (e.g. ETH hash rate after
-- the merge). Missing metrics simply give null columns. An incremental run starts each series' running max of
-- known_at from the values before what it reads.
-- depends_on: {{ ref('increment_bounds') }}
{%- set oc_features = [
    {'column': 'oc_adractcnt_z63', 'metric': 'adractcnt', 'kind': 'log_zscore', 'days': 63},
    {'column': 'oc_txcnt_chg_7d', 'metric': 'txcnt', 'kind': 'log_change', 'days': 7},
    {'column': 'oc_hashrate_chg_30d', 'metric': 'hashrate', 'kind': 'log_change', 'days': 30},
    {'column': 'oc_mvrv', 'metric': 'capmvrvcur', 'kind': 'level', 'days': 1},
] %}
with earlier_public as (
    select asset, metric, max(greatest(known_at, cast(date as timestamp))) as public_at
    from {{ ref('stg_onchain') }}
    where not {{ since('read_from') }}
    group by asset, metric
),

series as (
    select
        o.asset,
        o.metric,
        o.date,
        o.value,
        -- greatest() skips the NULL of a series with no earlier value.
        greatest(e.public_at, max(greatest(o.known_at, cast(o.date as timestamp))) over (
            partition by o.asset, o.metric order by o.date rows between unbounded preceding and current row
        )) as available_at
    from {{ ref('stg_onchain') }} as o
    left join earlier_public as e on o.asset = e.asset and o.metric = e.metric
    where {{ since('read_from', 'o.date') }}
),

{%- for f in oc_features %}

{{ f.column }}_daily as (
    select
        asset,
        date,
        available_at,
        {%- if f.kind == 'log_zscore' %}
        case when count(*) over d = {{ f.days }} and stddev_samp(ln(value)) over d > 0
            then (ln(value) - avg(ln(value)) over d) / stddev_samp(ln(value)) over d
        end as feature
        {%- elif f.kind == 'log_change' %}
        case when min(date) over d = date - {{ f.days }}
            then ln(value / first_value(value) over d)
        end as feature
        {%- else %}
        value as feature
        {%- endif %}
    from series
    where metric = '{{ f.metric }}'{% if f.kind != 'level' %} and value > 0{% endif %}
    window d as (
        partition by asset order by date
        range between interval {{ f.days - 1 if f.kind == 'log_zscore' else f.days }} days preceding
        and current row
    )
),

-- Several days can become public at the same instant; keep the latest so the ASOF match is unique.
{{ f.column }}_usable as (
    select asset, date, available_at, feature
    from {{ f.column }}_daily
    qualify row_number() over (partition by asset, available_at order by date desc) = 1
),
{%- endfor %}

crypto_days as (
    select symbol, date, cast(date + interval 1 day as timestamp) as day_end
    from {{ ref('stg_prices') }}
    where asset_class = 'crypto' and {{ since('rewrite_from') }}
)

select
    c.symbol,
    c.date
    {%- for f in oc_features %},
    case when c.date - {{ f.column }}.date <= {{ var('onchain_max_age_days') }}
        then {{ f.column }}.feature
    end as {{ f.column }}
    {%- endfor %}
from crypto_days as c
{%- for f in oc_features %}
asof left join {{ f.column }}_usable as {{ f.column }}
    on c.symbol = {{ f.column }}.asset and c.day_end > {{ f.column }}.available_at
{%- endfor %}
