"use client";
import { FormEvent, useEffect, useState } from "react";
import FanChart from "@/components/FanChart";
import LiveBadge from "@/components/LiveBadge";
import { ErrorLine, FreshnessLine, SyntheticNotice } from "@/components/Notice";
import Why from "@/components/Why";
import { api, HORIZON_NAMES, num, pct, ProjectorResponse, usd } from "@/components/api";

const MAX_AMOUNT = 1e12;

function checkAmount(text: string): string | null {
  const cleaned = text.replace(/[,$_\s]/g, "");
  const amount = Number(cleaned);
  if (!cleaned || !Number.isFinite(amount)) return `“${text}” is not a number of dollars; type an amount such as 10000.`;
  if (amount <= 0) return "The amount must be greater than zero.";
  if (amount > MAX_AMOUNT) return "The amount is above the $1,000,000,000,000 limit.";
  return null;
}

export default function ProjectorPage() {
  const [text, setText] = useState("10000");
  const [asOf, setAsOf] = useState("");
  const [data, setData] = useState<ProjectorResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(value: string, day = "") {
    const problem = checkAmount(value) ?? (day && day > new Date().toISOString().slice(0, 10) ? `The date ${day} is in the future.` : null);
    if (problem) { setError(problem); setData(null); return; }
    setBusy(true); setError(null);
    try {
      const query = `amount=${encodeURIComponent(value.replace(/[,$_\s]/g, ""))}${day ? `&as_of=${day}` : ""}`;
      setData(await api<ProjectorResponse>(`/api/projector?${query}`));
    } catch (e) {
      setError((e as Error).message); setData(null);
    } finally { setBusy(false); }
  }

  useEffect(() => { run("10000"); }, []);
  const submit = (e: FormEvent) => { e.preventDefault(); run(text, asOf); };
  const positions = data?.lines.filter((l) => l.rank != null) ?? [];
  const total = data?.lines.find((l) => l.symbol === "TOTAL");
  const cash = data?.lines.find((l) => l.symbol === "CASH");
  const liveQuote = positions.map((p) => p.quote).filter(Boolean).sort((a, b) => a!.age_seconds - b!.age_seconds)[0] ?? null;

  return (
    <>
      <h1>Projector</h1>
      <p className="subtitle">How much would you put to work? The Projector sizes fractional-Kelly (½) positions and shows where their value may be at four horizons.</p>
      <div className="card">
        <form className="inline" onSubmit={submit}>
          <label>Amount (USD)
            <input className="big" data-testid="amount" inputMode="decimal" value={text} onChange={(e) => setText(e.target.value)} aria-label="amount in dollars" />
          </label>
          <label>As of (optional: an earlier day&apos;s advice)
            <input type="date" data-testid="as-of" value={asOf} onChange={(e) => setAsOf(e.target.value)} />
          </label>
          <button type="submit" disabled={busy} data-testid="project">{busy ? "Projecting…" : "Project"}</button>
          {data ? <span style={{ marginLeft: "auto" }}>Prices: <LiveBadge quote={liveQuote} /></span> : null}
        </form>
        <ErrorLine message={error} />
        {data ? <FreshnessLine freshness={data.freshness} asOf={data.as_of} /> : null}
      </div>
      {data ? <SyntheticNotice symbols={data.synthetic_symbols} /> : null}
      {data && total ? (
        <>
          <div className="kpis">
            <div className="kpi"><div className="label">Invested</div><div className="value">{usd(total.dollars - (cash?.dollars ?? 0))}</div></div>
            <div className="kpi"><div className="label">Kept in cash</div><div className="value">{usd(cash?.dollars ?? 0)}</div></div>
            {total.bands.filter((b) => b.horizon === "1y").map((b) => (
              <div className="kpi" key={b.horizon}><div className="label">In 1 year (P10 – P90)</div>
                <div className="value">{usd(b.p10, 0)} – {usd(b.p90, 0)}</div></div>
            ))}
          </div>
          <div className="card">
            <h2>Ranked trades</h2>
            <table data-testid="trades">
              <thead><tr><th>#</th><th className="left">Symbol</th><th title="the probability of a gain over the sizing horizon">Chance of a gain</th><th>Weight</th><th>Dollars</th><th>Shares</th><th>Price</th>
                {["1m", "1y"].map((h) => <th key={h}>{HORIZON_NAMES[h]} P10 · P50 · P90</th>)}</tr></thead>
              <tbody>
                {data.lines.map((line) => (
                  <tr key={line.symbol} data-testid="trade-row" data-symbol={line.symbol}
                      className={line.symbol === "TOTAL" ? "total" : line.symbol === "CASH" ? "cash" : ""}>
                    <td>{line.rank ?? ""}</td>
                    <td className="left"><span className="sym">{line.symbol}</span>
                      {data.synthetic_symbols.includes(line.symbol) ? <span className="badge badge-synth">synthetic</span> : null}</td>
                    <td data-testid="confidence" data-source={line.confidence_source ?? ""}>
                      {line.confidence != null ? pct(line.confidence, 0).replace("+", "") : ""}
                      {line.confidence_label ? <div className="muted small">{line.confidence_label}</div> : null}</td>
                    <td>{pct(line.weight).replace("+", "")}</td>
                    <td data-testid="dollars" data-value={line.dollars}>{usd(line.dollars)}</td>
                    <td>{line.shares != null ? num(line.shares) : ""}</td>
                    <td>{line.rank != null ? <>{usd(line.live_price ?? line.last_price)} <LiveBadge quote={line.quote} /></> : ""}</td>
                    {["1m", "1y"].map((h) => {
                      const b = line.bands.find((x) => x.horizon === h)!;
                      return <td key={h} data-testid={`band-${h}`} data-p10={b.p10} data-p50={b.p50} data-p90={b.p90}>
                        <span className="muted">{usd(b.p10, 0)}</span> · <strong>{usd(b.p50, 0)}</strong> · <span className="muted">{usd(b.p90, 0)}</span></td>;
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="card">
            <h2>The whole amount: P10–P90 of its value</h2>
            <div data-testid="fan-total"><FanChart start={total.dollars} bands={total.bands} height={300} /></div>
          </div>
          {positions.length ? (
            <div className="card">
              <h2>Each position</h2>
              <div className="grid4">
                {positions.map((p) => (
                  <div className="mini" key={p.symbol}>
                    <div><span className="sym">{p.symbol}</span> <span className="muted small">{usd(p.dollars)} · expected 1m {pct(p.expected_return)}</span></div>
                    <FanChart start={p.dollars} bands={p.bands} height={170} compact />
                    <Why symbol={p.symbol} asOf={data.as_of} />
                  </div>
                ))}
              </div>
            </div>
          ) : <div className="card muted">No position clears the confidence bar today: the Projector keeps everything in cash.</div>}
        </>
      ) : null}
    </>
  );
}
