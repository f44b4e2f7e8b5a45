-- Forward log returns (labels) per horizon: h rows ahead in the symbol's own calendar, h from
-- var('horizons') as [equity sessions, crypto days]. end_<h> is the date the label is realized; both
-- are null while that future row does not exist yet. Never join this into features. lead() only looks ahead, so
-- the rewritten rows are also all the rows read.
-- depends_on: {{ ref('increment_bounds') }}
select
    symbol,
    date,
    asset_class
    {%- for name, steps in var('horizons').items() %},
    case asset_class
        when 'crypto' then ln(lead(close, {{ steps[1] }}) over w / close)
        else ln(lead(close, {{ steps[0] }}) over w / close)
    end as fwd_{{ name }}
    {%- endfor %}
    {%- for name, steps in var('horizons').items() %},
    case asset_class
        when 'crypto' then lead(date, {{ steps[1] }}) over w
        else lead(date, {{ steps[0] }}) over w
    end as end_{{ name }}
    {%- endfor %}
from {{ ref('stg_prices') }}
where {{ since('rewrite_from') }}
window w as (partition by symbol order by date)
order by symbol, date
