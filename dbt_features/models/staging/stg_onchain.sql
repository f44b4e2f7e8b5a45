-- Typed on-chain metrics. known_at is normalised to a UTC TIMESTAMP (the profile pins TimeZone to UTC),
-- metric names to lower case so feature models do not depend on the provider's spelling.
select
    upper(asset) as asset,
    lower(metric) as metric,
    cast(date as date) as date,
    cast(value as double) as value,
    cast(known_at as timestamp) as known_at,
    source
from {{ source('market', 'onchain') }}
where value is not null
