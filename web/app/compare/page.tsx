"use client";
import { useEffect, useState } from "react";
import { Bar, CartesianGrid, ComposedChart, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import LiveBadge from "@/components/LiveBadge";
import { ErrorLine, FreshnessLine, SyntheticNotice } from "@/components/Notice";
import { api, CompareResponse, Health, HORIZON_NAMES, pct, usd } from "@/components/api";

const PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#e11d48"];

export default function ComparePage() {
  const [symbols, setSymbols] = useState<string[]>([]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [data, setData] = useState<CompareResponse | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => { api<Health>("/api/health").then((h) => setSymbols(h.symbols)).catch((e) => setError(e.message)); }, []);

  function toggle(symbol: string) {
    const next = chosen.includes(symbol) ? chosen.filter((s) => s !== symbol) : [...chosen, symbol];
    if (next.length > 4) { setError("Compare at most 4 symbols at a time."); return; }
    setChosen(next); setError(null);
    if (next.length < 2) { setData(null); return; }
    api<CompareResponse>(`/api/compare?symbols=${next.join(",")}`).then(setData).catch((e) => { setError(e.message); setData(null); });
  }

  const history = data ? Array.from(new Set(data.symbols.flatMap((s) => s.history.map((h) => h.date)))).sort().map((d) =>
    Object.fromEntries([["date", d], ...data.symbols.map((s) => [s.symbol, s.history.find((h) => h.date === d)?.value])])) : [];
  const bandRows = Object.keys(HORIZON_NAMES).map((h) => Object.fromEntries([["horizon", h], ...(data?.symbols ?? []).flatMap((s) => {
    const b = s.bands.find((x) => x.horizon === h);
    return b ? [[s.symbol, [Math.expm1(b.p10), Math.expm1(b.p90)]]] : [];
  })]));

  return (
    <>
      <h1>Compare</h1>
      <p className="subtitle">Pick two to four symbols: their forecast bands side by side, how much the models agree, and how they moved over the last year.</p>
      <div className="card">
        <div className="chips" data-testid="symbol-chips">
          {symbols.map((s) => <button key={s} className={`chip ${chosen.includes(s) ? "on" : ""}`} data-testid={`chip-${s}`} onClick={() => toggle(s)}>{s}</button>)}
        </div>
        {chosen.length === 1 ? <p className="muted small">Pick one more symbol.</p> : null}
        <ErrorLine message={error} />
      </div>
      {data ? (
        <>
          <SyntheticNotice symbols={data.symbols.filter((s) => s.synthetic).map((s) => s.symbol)} />
          <div className="card">
            <table data-testid="compare-table">
              <thead><tr><th>Symbol</th><th>Last close</th><th>Latest price</th><th>Confidence</th><th>Models agreeing (1m)</th>
                {["1m", "1y"].map((h) => <th key={h}>{HORIZON_NAMES[h]} P10 · P50 · P90</th>)}</tr></thead>
              <tbody>{data.symbols.map((s) => (
                <tr key={s.symbol} data-testid="compare-row">
                  <td><span className="sym">{s.symbol}</span>{s.synthetic ? <span className="badge badge-synth">synthetic</span> : null}</td>
                  <td>{usd(s.last_close)}<div className="small muted">{s.last_close_date}</div></td>
                  <td>{usd(s.quote?.price)} <div><LiveBadge quote={s.quote} /></div>
                    {s.quote ? <div className="small muted">{pct(s.quote.price / s.last_close - 1, 2)} vs close</div> : null}</td>
                  <td>{s.confidence != null ? pct(s.confidence, 0).replace("+", "") : "—"}</td>
                  <td>{s.agreement["1m"] ? `${Math.round(s.agreement["1m"].share * s.agreement["1m"].models)} of ${s.agreement["1m"].models}` : "—"}</td>
                  {["1m", "1y"].map((h) => { const b = s.bands.find((x) => x.horizon === h);
                    return <td key={h} className="nowrap">{b ? <>{pct(Math.expm1(b.p10))} · <strong>{pct(Math.expm1(b.p50))}</strong> · {pct(Math.expm1(b.p90))}</> : "—"}</td>; })}
                </tr>))}
              </tbody>
            </table>
            <FreshnessLine freshness={data.freshness} />
          </div>
          <div className="row">
            <div className="card">
              <h2>Forecast return, P10 to P90</h2>
              <div data-testid="bands-chart">
                <ResponsiveContainer width="100%" height={280}>
                  <ComposedChart data={bandRows} margin={{ top: 8, right: 12, left: 4, bottom: 0 }}>
                    <CartesianGrid stroke="#eef2f7" vertical={false} />
                    <XAxis dataKey="horizon" /><YAxis tickFormatter={(v: number) => pct(v, 0)} width={56} />
                    <Tooltip formatter={(v) => (Array.isArray(v) ? `${pct(Number(v[0]))} to ${pct(Number(v[1]))}` : pct(Number(v)))} /><Legend />
                    {data.symbols.map((s, i) => (
                      <Bar key={s.symbol} dataKey={s.symbol} fill={PALETTE[i]} fillOpacity={0.75} radius={3} isAnimationActive={false} />))}
                  </ComposedChart>
                </ResponsiveContainer>
              </div>
            </div>
            <div className="card">
              <h2>Last year, normalized to 100</h2>
              <div data-testid="history-chart">
                <ResponsiveContainer width="100%" height={280}>
                  <LineChart data={history} margin={{ top: 8, right: 12, left: 4, bottom: 0 }}>
                    <CartesianGrid stroke="#eef2f7" vertical={false} />
                    <XAxis dataKey="date" tick={{ fontSize: 11 }} minTickGap={40} /><YAxis width={44} domain={["auto", "auto"]} />
                    <Tooltip formatter={(v) => Number(v).toFixed(1)} /><Legend />
                    {data.symbols.map((s, i) => <Line key={s.symbol} dataKey={s.symbol} stroke={PALETTE[i]} dot={false} strokeWidth={2} connectNulls isAnimationActive={false} />)}
                  </LineChart>
                </ResponsiveContainer>
              </div>
            </div>
          </div>
          <div className="card">
            <h2>Past 1-month forecasts against what happened</h2>
            <div className="grid4">{data.symbols.map((s) => {
              const inside = s.track_record.filter((t) => t.realized >= t.q10 && t.realized <= t.q90).length;
              return <div className="mini" key={s.symbol}><span className="sym">{s.symbol}</span>
                <div className="small muted">{s.track_record.length ? `${inside} of ${s.track_record.length} outcomes inside P10–P90 (${pct(inside / s.track_record.length, 0).replace("+", "")}; 80% expected)` : "no realized forecasts yet"}</div>
                <ResponsiveContainer width="100%" height={150}>
                  <LineChart data={s.track_record.map((t) => ({ date: t.date, q10: Math.expm1(t.q10), q90: Math.expm1(t.q90), realized: Math.expm1(t.realized) }))}>
                    <XAxis dataKey="date" hide /><YAxis tickFormatter={(v: number) => pct(v, 0)} width={48} />
                    <Tooltip formatter={(v) => pct(Number(v))} />
                    <Line dataKey="q10" stroke="#93c5fd" dot={false} isAnimationActive={false} />
                    <Line dataKey="q90" stroke="#93c5fd" dot={false} isAnimationActive={false} />
                    <Line dataKey="realized" stroke="#0f172a" dot={false} strokeWidth={1.5} isAnimationActive={false} />
                  </LineChart>
                </ResponsiveContainer></div>; })}
            </div>
          </div>
        </>
      ) : null}
    </>
  );
}
