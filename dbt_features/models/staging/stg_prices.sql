-- Typed daily bars; rows without a usable close are dropped because every feature is a log of prices.
select
    upper(symbol) as symbol,
    cast(date as date) as date,
    lower(asset_class) as asset_class,
    cast(open as double) as open,
    cast(high as double) as high,
    cast(low as double) as low,
    cast(close as double) as close,
    -- A zero volume means "not reported" (indices), not "nothing traded".
    cast(nullif(volume, 0) as double) as volume,
    source
from {{ source('market', 'prices') }}
where close > 0
