"use client";
// The Rebalance section of My plays: the trades that move the plays (plus cash added or withdrawn) toward the day's
// cost-aware target, with the costs, the cash left, and the expected growth gained against the cost paid.
import { FormEvent, useState } from "react";
import { ErrorLine } from "@/components/Notice";
import { api, HORIZON_NAMES, num, pct, RebalanceResponse, usd } from "@/components/api";
import Why from "@/components/Why";

const plain = (v: number | null | undefined, digits = 1) => (v == null ? "—" : `${(v * 100).toFixed(digits)}%`);

export default function Rebalance() {
  const [cash, setCash] = useState("0");
  const [data, setData] = useState<RebalanceResponse | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function run(e?: FormEvent) {
    e?.preventDefault();
    const amount = Number(cash.replace(/[$,_\s]/g, ""));
    if (!Number.isFinite(amount)) { setError(`Cash “${cash}” is not a number of dollars.`); setData(null); return; }
    try {
      setData(await api<RebalanceResponse>(`/api/rebalance?cash=${amount}`)); setError(null);
    } catch (err) {
      setData(null); setError((err as Error).message);
    }
  }

  const s = data?.summary;
  return (
    <div className="card" data-testid="rebalance">
      <h2>Rebalance</h2>
      <p className="small muted">The trades that move what you hold toward the day&apos;s fractional-Kelly target, solved with the
        costs inside the problem: a trade is made only when it pays for itself. Add cash (or withdraw it with a minus sign).</p>
      <form className="inline" onSubmit={run}>
        <label>Cash to add<input data-testid="rebalance-cash" inputMode="decimal" value={cash} onChange={(e) => setCash(e.target.value)} /></label>
        <button type="submit" data-testid="rebalance-run">Rebalance</button>
      </form>
      <ErrorLine message={error} onToken={() => { setError(null); run(); }} />
      {data && s ? (
        <>
          <div className="kpis">
            <div className="kpi"><div className="label">Expected growth gained</div>
              <div className="value pos" data-testid="rebalance-gain" data-value={s.expected_growth_gained}>{usd(s.expected_growth_gained)}</div>
              <div className="small muted">certainty equivalent at {HORIZON_NAMES[s.horizon] ?? s.horizon}</div></div>
            <div className="kpi"><div className="label">Cost paid</div>
              <div className="value" data-testid="rebalance-cost" data-value={s.total_cost}>{usd(s.total_cost)}</div></div>
            <div className="kpi"><div className="label">Cash left</div>
              <div className="value" data-testid="rebalance-cash-left" data-value={s.cash_left}>{usd(s.cash_left)}</div></div>
          </div>
          <p className="small" data-testid="rebalance-terms" data-cost-bp={s.terms.cost_bp} data-min-fee={s.terms.min_fee}
             data-min-trade={s.terms.min_trade} data-tolerance={s.terms.tolerance} data-turnover-cap={s.terms.turnover_cap}
             data-turnover-binds={String(s.turnover_cap_binds)} data-total={s.total}>
            Costs {s.terms.cost_bp} bp per trade, minimum fee {usd(s.terms.min_fee)}, minimum trade {usd(s.terms.min_trade)};
            no-trade band ±{plain(s.terms.tolerance)}; turnover cap {s.terms.turnover_cap}{s.turnover_cap_binds ? " (binds)" : ""};
            equities in {s.terms.fractional_shares ? "fractional" : "whole"} shares. Advice of {s.as_of}; book {usd(s.total)}.
          </p>
          <table data-testid="rebalance-table">
            <thead><tr><th>Symbol</th><th>Held</th><th>Current</th><th>Target</th><th>Drift</th><th>Trade</th><th>Shares</th>
              <th>Dollars</th><th>Cost</th><th>After</th><th className="left">Note</th></tr></thead>
            <tbody>{data.lines.map((l) => (
              <tr key={l.symbol} data-testid="rebalance-row" data-symbol={l.symbol} data-side={l.side} data-shares={l.shares}
                  data-shares-held={l.shares_held} data-shares-after={l.shares_after} data-price={l.last_price ?? ""}
                  data-current={l.current_weight ?? ""} data-target={l.target_weight ?? ""} data-dollars={l.dollars}
                  data-cost={l.cost} data-asset-class={l.asset_class ?? ""} data-covered={String(l.covered)}>
                <td><span className="sym">{l.symbol}</span></td>
                <td>{num(l.shares_held)}</td>
                <td>{plain(l.current_weight)}</td>
                <td>{plain(l.target_weight)}</td>
                <td>{pct(l.drift)}</td>
                <td className={l.side === "BUY" ? "pos" : l.side === "SELL" ? "neg" : "muted"}>{l.side}</td>
                <td>{l.side === "HOLD" ? "—" : num(l.shares, 6)}</td>
                <td>{l.side === "HOLD" ? "—" : usd(l.dollars)}</td>
                <td>{l.side === "HOLD" ? "—" : usd(l.cost)}</td>
                <td>{num(l.shares_after, 6)}<div className="small muted">{plain(l.weight_after)}</div></td>
                <td className="left small muted">{l.note}{l.covered ? <Why symbol={l.symbol} asOf={s.as_of} /> : null}</td>
              </tr>))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}
