-- Realized volatility: sample standard deviation (ddof 1) of daily log returns over 21 and 63 rows,
-- not annualized.
select
    symbol,
    date,
    {{ rolling('stddev_samp', 'ret_1d', 21, dense=true) }} as vol_21d,
    {{ rolling('stddev_samp', 'ret_1d', 63, dense=true) }} as vol_63d
from {{ ref('feat_returns') }}
