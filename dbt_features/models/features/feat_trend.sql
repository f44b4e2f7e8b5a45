-- Trend and oscillator features from closes: gaps to simple moving averages, RSI(14) and drawdown.
-- RSI uses Cutler's simple averages of gains and losses over 14 rows (not Wilder's smoothing), so it
-- depends on exactly 14 rows and no infinite history: 100 * avg_gain / (avg_gain + avg_loss), 50 when flat.
-- The drawdown's running high does: an incremental run starts it from the highest close before what it reads.
-- depends_on: {{ ref('increment_bounds') }}
with earlier_high as (
    select symbol, max(close) as high
    from {{ ref('stg_prices') }}
    where not {{ since('read_from') }}
    group by symbol
),

moves as (
    select
        symbol,
        date,
        close,
        close - lag(close) over (partition by symbol order by date) as change
    from {{ ref('stg_prices') }}
    where {{ since('read_from') }}
),

split as (
    select
        moves.*,
        earlier_high.high as earlier_high,
        -- Explicit CASE rather than greatest(): DuckDB's greatest() skips NULLs, which would turn the
        -- missing first change into a zero gain.
        case when change > 0 then change when change is not null then 0 end as gain,
        case when change < 0 then -change when change is not null then 0 end as loss
    from moves
    left join earlier_high using (symbol)
),

averages as (
    select
        symbol,
        date,
        close,
        {{ rolling('avg', 'close', 20, dense=true) }} as sma_20,
        {{ rolling('avg', 'close', 50, dense=true) }} as sma_50,
        {{ rolling('avg', 'close', 200, dense=true) }} as sma_200,
        {{ rolling('avg', 'gain', 14, dense=true) }} as avg_gain_14,
        {{ rolling('avg', 'loss', 14, dense=true) }} as avg_loss_14,
        -- greatest() skips the NULL of a symbol with no earlier close.
        greatest(earlier_high, max(close) over (
            partition by symbol order by date rows between unbounded preceding and current row
        )) as running_high
    from split
)

select
    symbol,
    date,
    ln(close / sma_20) as ma_gap_20,
    ln(close / sma_50) as ma_gap_50,
    ln(close / sma_200) as ma_gap_200,
    case
        when avg_gain_14 + avg_loss_14 > 0 then 100 * avg_gain_14 / (avg_gain_14 + avg_loss_14)
        when avg_gain_14 is not null then 50
    end as rsi_14,
    ln(close / running_high) as drawdown
from averages
