-- Rolling beta to the benchmark index: OLS slope of the symbol's daily log return on the index's over
-- the last 63 rows on which both exist. Only dates with an index return have a row here (crypto
-- weekends do not), so beta_63 is null on the other dates of the wide table.
with index_returns as (
    select date, ret_1d as market_ret
    from {{ ref('feat_returns') }}
    where symbol = '{{ var("benchmark_symbol") }}' and ret_1d is not null
),

paired as (
    select r.symbol, r.date, r.ret_1d, m.market_ret
    from {{ ref('feat_returns') }} as r
    inner join index_returns as m on r.date = m.date
)

select
    symbol,
    date,
    {{ rolling('regr_slope', 'ret_1d, market_ret', 63, count_expr='ret_1d * market_ret', dense=true) }} as beta_63
from paired
