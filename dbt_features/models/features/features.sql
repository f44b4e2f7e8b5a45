-- The wide, point-in-time feature table: one row per symbol and date of market.prices. Every column
-- at date d depends only on bars dated <= d and on-chain values public by the end of d.
-- depends_on: {{ ref('increment_bounds') }}
select
    p.symbol,
    p.date,
    p.asset_class,
    r.ret_1d,
    r.ret_5d,
    r.ret_21d,
    r.ret_63d,
    r.ret_252d,
    v.vol_21d,
    v.vol_63d,
    r.mom_12_1,
    t.ma_gap_20,
    t.ma_gap_50,
    t.ma_gap_200,
    t.rsi_14,
    t.drawdown,
    b.beta_63,
    vz.volume_z_21,
    k.rank_ret_21d,
    k.rank_vol_21d,
    k.rank_mom_12_1,
    o.oc_adractcnt_z63,
    o.oc_txcnt_chg_7d,
    o.oc_hashrate_chg_30d,
    o.oc_mvrv
from {{ ref('stg_prices') }} as p
left join {{ ref('feat_returns') }} as r on p.symbol = r.symbol and p.date = r.date
left join {{ ref('feat_volatility') }} as v on p.symbol = v.symbol and p.date = v.date
left join {{ ref('feat_trend') }} as t on p.symbol = t.symbol and p.date = t.date
left join {{ ref('feat_beta') }} as b on p.symbol = b.symbol and p.date = b.date
left join {{ ref('feat_volume') }} as vz on p.symbol = vz.symbol and p.date = vz.date
left join {{ ref('feat_ranks') }} as k on p.symbol = k.symbol and p.date = k.date
left join {{ ref('feat_onchain') }} as o on p.symbol = o.symbol and p.date = o.date
where {{ since('rewrite_from', 'p.date') }}
order by p.symbol, p.date
