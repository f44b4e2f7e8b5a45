-- Cross-sectional percentile ranks (percent_rank: 0 = lowest, 1 = highest; ties share the lower rank)
-- among the symbols of the same asset class on the same date. Symbols with a null input are ranked
-- in a partition of their own and get a null rank, so they do not shift the others.
{%- set ranked = ['ret_21d', 'vol_21d', 'mom_12_1'] %}
with inputs as (
    select r.symbol, r.date, r.asset_class, r.ret_21d, r.mom_12_1, v.vol_21d
    from {{ ref('feat_returns') }} as r
    inner join {{ ref('feat_volatility') }} as v on r.symbol = v.symbol and r.date = v.date
)

select
    symbol,
    date
    {%- for column in ranked %},
    case when {{ column }} is not null then
        percent_rank() over (partition by date, asset_class, {{ column }} is null order by {{ column }})
    end as rank_{{ column }}
    {%- endfor %}
from inputs
