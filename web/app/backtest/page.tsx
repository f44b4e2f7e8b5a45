"use client";
import { useEffect, useState } from "react";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import BacktestStatistics from "@/components/BacktestStatistics";
import LiveBadge from "@/components/LiveBadge";
import { ErrorLine, FreshnessLine, SyntheticNotice } from "@/components/Notice";
import { api, BacktestResponse, num, pct } from "@/components/api";

const COLORS: Record<string, string> = { half_kelly: "#2563eb", full_kelly: "#f59e0b", equal_weight: "#64748b", inverse_volatility: "#a855f7", sp500_buy_hold: "#10b981" };
const NAMES: Record<string, string> = { half_kelly: "Fractional Kelly (½)", full_kelly: "Full Kelly", equal_weight: "Equal weight", inverse_volatility: "Inverse volatility", sp500_buy_hold: "S&P 500 buy and hold" };

export default function BacktestPage() {
  const [data, setData] = useState<BacktestResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => { api<BacktestResponse>("/api/backtest").then(setData).catch((e) => setError(e.message)); }, []);

  const strategies = data ? Object.keys(data.series) : [];
  const windows = data ? Array.from(new Set(strategies.flatMap((s) => data.series[s].map((p) => p.window_start)))).sort() : [];
  // A window's point is the value at its end; "start" is the $1 every strategy begins with.
  const start = Object.fromEntries([["window", "start"], ...strategies.flatMap((s) => [[`${s}_growth`, 1], [`${s}_drawdown`, 0]])]);
  const rows = [start, ...windows.map((w) => Object.fromEntries([["window", w], ...strategies.flatMap((s) => {
    const p = data!.series[s].find((x) => x.window_start === w);
    return p ? [[`${s}_growth`, p.growth], [`${s}_drawdown`, p.drawdown]] : [];
  })]))];
  const synthetic = data?.open_period?.quotes.filter((q) => q.note.includes("synthetic")).map((q) => q.symbol) ?? [];
  const chart = (suffix: string, format: (v: number) => string) => (
    <ResponsiveContainer width="100%" height={280}>
      <LineChart data={rows} margin={{ top: 8, right: 16, left: 8, bottom: 0 }}>
        <CartesianGrid stroke="#eef2f7" vertical={false} />
        <XAxis dataKey="window" tick={{ fontSize: 12 }} />
        <YAxis tick={{ fontSize: 11 }} tickFormatter={format} domain={["auto", "auto"]} width={64} />
        <Tooltip formatter={(v) => format(Number(v))} />
        <Legend />
        {strategies.map((s) => <Line key={s} dataKey={`${s}_${suffix}`} name={NAMES[s] ?? s} stroke={COLORS[s] ?? "#0f172a"}
          strokeWidth={s === "half_kelly" ? 3 : 2} dot={{ r: 3 }} isAnimationActive={false} />)}
      </LineChart>
    </ResponsiveContainer>
  );

  return (
    <>
      <h1>Decision backtest</h1>
      <p className="subtitle">Each window holds the portfolio recommended on its first day, entered at each symbol's first close after that day, net of 10 bp per side: fractional Kelly (½) against full Kelly, equal weight, inverse volatility and the S&P 500 held throughout. The period in progress is marked at the latest prices above the charts.</p>
      <ErrorLine message={error} />
      {data ? (
        <>
          <SyntheticNotice symbols={synthetic} />
          {data.open_period ? (
            <div className="kpis">
              <div className="kpi"><div className="label">Open period since {data.open_period.since} · fractional Kelly (½)</div>
                <div className={`value ${data.open_period.half_kelly_return >= 0 ? "pos" : "neg"}`}>{pct(data.open_period.half_kelly_return, 2)}</div></div>
              <div className="kpi"><div className="label">Open period · full Kelly</div>
                <div className={`value ${data.open_period.full_kelly_return >= 0 ? "pos" : "neg"}`}>{pct(data.open_period.full_kelly_return, 2)}</div></div>
              <div className="kpi"><div className="label">Marked at</div><div style={{ marginTop: 8 }}><LiveBadge quote={data.open_period.quotes[0] ?? null} /></div></div>
            </div>
          ) : null}
          <div className="card"><h2>Growth of $1 (value at the end of each window)</h2><div data-testid="growth-chart">{chart("growth", (v) => v.toFixed(3))}</div></div>
          <div className="card"><h2>Drawdown</h2><div data-testid="drawdown-chart">{chart("drawdown", (v) => pct(v))}</div></div>
          <div className="card">
            <h2>Summary</h2>
            <table data-testid="summary">
              <thead><tr><th>Strategy</th><th>Periods</th><th>Annual return</th><th>Annual volatility</th><th>Sharpe</th><th>Max drawdown</th></tr></thead>
              <tbody>{data.summary.map((r) => (
                <tr key={String(r.strategy)}><td className="sym">{NAMES[String(r.strategy)] ?? r.strategy}</td><td>{r.periods}</td>
                  <td>{pct(r.annual_return as number)}</td><td>{pct(r.annual_volatility as number).replace("+", "")}</td>
                  <td>{num(r.sharpe as number, 2)}</td><td>{pct(r.max_drawdown as number)}</td></tr>))}
              </tbody>
            </table>
            <FreshnessLine freshness={data.freshness} />
          </div>
          <BacktestStatistics rows={data.summary} names={NAMES} />
        </>
      ) : null}
    </>
  );
}
