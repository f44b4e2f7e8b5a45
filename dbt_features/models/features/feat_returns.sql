-- Log returns over 1/5/21/63/252 rows and 12-1 momentum (the year to a month ago, skipping the
-- last month's reversal). lag() only reaches backwards, so a value at date d uses closes up to d.
-- depends_on: {{ ref('increment_bounds') }}
with inputs as (
    select * from {{ ref('stg_prices') }} where {{ since('read_from') }}
)

select
    symbol,
    date,
    asset_class,
    ln(close / lag(close, 1) over w) as ret_1d,
    ln(close / lag(close, 5) over w) as ret_5d,
    ln(close / lag(close, 21) over w) as ret_21d,
    ln(close / lag(close, 63) over w) as ret_63d,
    ln(close / lag(close, 252) over w) as ret_252d,
    ln(lag(close, 21) over w / lag(close, 252) over w) as mom_12_1
from inputs
window w as (partition by symbol order by date)
