-- Volume z-score: (volume - mean) / sample std over the last 21 rows, only where all 21 volumes exist
-- (indices report none, providers may skip days) and they are not all equal.
-- depends_on: {{ ref('increment_bounds') }}
select
    symbol,
    date,
    case when count(volume) over w = 21
        then (volume - avg(volume) over w) / nullif(stddev_samp(volume) over w, 0)
    end as volume_z_21
from {{ ref('stg_prices') }}
where {{ since('read_from') }}
window w as (partition by symbol order by date rows between 20 preceding and current row)
