"use client";
import { FormEvent, useEffect, useState } from "react";
import Alerts from "@/components/Alerts";
import LiveBadge from "@/components/LiveBadge";
import Rebalance from "@/components/Rebalance";
import { ErrorLine, FreshnessLine } from "@/components/Notice";
import { api, Health, HORIZON_NAMES, num, pct, Play, PlaysResponse, usd } from "@/components/api";

type Draft = { symbol: string; shares: string; entry_price: string; entry_date: string; note: string };
const EMPTY: Draft = { symbol: "", shares: "", entry_price: "", entry_date: "", note: "" };

function checkDraft(d: Draft, symbols: string[]): string | null {
  const symbol = d.symbol.trim().toUpperCase();
  if (!symbol) return "Choose a symbol.";
  if (symbols.length && !symbols.includes(symbol)) return `Unknown symbol “${symbol}”: choose one of ${symbols.join(", ")}.`;
  const shares = Number(d.shares);
  if (!d.shares || !Number.isFinite(shares) || shares <= 0) return "Shares must be a number greater than zero.";
  const price = Number(d.entry_price);
  if (!d.entry_price || !Number.isFinite(price) || price <= 0) return "Entry price must be a positive number of dollars.";
  if (!d.entry_date) return "Give the entry date.";
  if (d.entry_date > new Date().toISOString().slice(0, 10)) return `The entry date ${d.entry_date} is in the future.`;
  return null;
}

function BandCell({ play }: { play: Play }) {
  if (!play.band) return <span className="muted small">no advice for this symbol</span>;
  const b = play.band;
  const at = Math.min(1, Math.max(0, b.position));
  return (
    <div title={`P10 ${usd(b.p10)} · P50 ${usd(b.p50)} · P90 ${usd(b.p90)} (advice of ${b.as_of}, ${HORIZON_NAMES[b.horizon]})`}>
      <div className="bandbar"><span className="dot" style={{ left: `${at * 100}%` }} /></div>
      <div className="small muted" style={{ marginTop: 4 }}>{b.where} · {HORIZON_NAMES[b.horizon]} band of {b.as_of}</div>
    </div>
  );
}

export default function PlaysPage() {
  const [data, setData] = useState<PlaysResponse | null>(null);
  const [symbols, setSymbols] = useState<string[]>([]);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [editing, setEditing] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  const [version, setVersion] = useState(0);
  const load = () => api<PlaysResponse>("/api/plays").then((d) => { setData(d); setVersion((v) => v + 1); })
    .catch((e) => setError(e.message));
  useEffect(() => {
    load();
    api<Health>("/api/health").then((h) => setSymbols(h.symbols)).catch(() => undefined);
  }, []);

  async function save(e: FormEvent) {
    e.preventDefault();
    const problem = checkDraft(draft, symbols);
    if (problem) { setError(problem); return; }
    const body = JSON.stringify({ symbol: draft.symbol.trim().toUpperCase(), shares: Number(draft.shares),
      entry_price: Number(draft.entry_price), entry_date: draft.entry_date, note: draft.note || null });
    try {
      await api(editing ? `/api/plays/${editing}` : "/api/plays", { method: editing ? "PUT" : "POST", body });
      setDraft(EMPTY); setEditing(null); setError(null); await load();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  async function remove(play: Play) {
    try { await api(`/api/plays/${play.play_id}`, { method: "DELETE" }); await load(); }
    catch (err) { setError((err as Error).message); }
  }

  function edit(play: Play) {
    setEditing(play.play_id); setError(null);
    setDraft({ symbol: play.symbol, shares: String(play.shares), entry_price: String(play.entry_price), entry_date: play.entry_date, note: play.note ?? "" });
  }

  return (
    <>
      <h1>My plays</h1>
      <p className="subtitle">The positions you actually hold, valued at the latest price, against the band the advice gave for them.</p>
      {data && data.plays.length ? (
        <div className="kpis">
          <div className="kpi"><div className="label">Value</div><div className="value">{usd(data.total_value)}</div></div>
          <div className="kpi"><div className="label">Cost</div><div className="value">{usd(data.total_cost)}</div></div>
          <div className="kpi"><div className="label">Profit / loss</div>
            <div className={`value ${data.total_pnl >= 0 ? "pos" : "neg"}`} data-testid="total-pnl">{usd(data.total_pnl)}</div></div>
        </div>
      ) : null}
      <div className="card">
        <h2>{editing ? `Edit play #${editing}` : "Add a play"}</h2>
        <form className="inline" onSubmit={save} data-testid="play-form">
          <label>Symbol
            <input list="symbols" data-testid="play-symbol" value={draft.symbol} onChange={(e) => setDraft({ ...draft, symbol: e.target.value })} placeholder="AAPL" />
            <datalist id="symbols">{symbols.map((s) => <option key={s} value={s} />)}</datalist>
          </label>
          <label>Shares<input data-testid="play-shares" inputMode="decimal" value={draft.shares} onChange={(e) => setDraft({ ...draft, shares: e.target.value })} placeholder="10" /></label>
          <label>Entry price<input data-testid="play-price" inputMode="decimal" value={draft.entry_price} onChange={(e) => setDraft({ ...draft, entry_price: e.target.value })} placeholder="120.00" /></label>
          <label>Entry date<input data-testid="play-date" type="date" value={draft.entry_date} onChange={(e) => setDraft({ ...draft, entry_date: e.target.value })} /></label>
          <label>Note<input data-testid="play-note" value={draft.note} onChange={(e) => setDraft({ ...draft, note: e.target.value })} placeholder="optional" /></label>
          <button type="submit" data-testid="play-save">{editing ? "Save" : "Add"}</button>
          {editing ? <button type="button" className="ghost" onClick={() => { setEditing(null); setDraft(EMPTY); }}>Cancel</button> : null}
        </form>
        {/* The draft stays: with the token given, Add again. */}
        <ErrorLine message={error} onToken={() => { setError(null); load(); }} />
      </div>
      <div className="card">
        <h2>Positions</h2>
        {data && data.plays.length ? (
          <table data-testid="plays">
            <thead><tr><th>Symbol</th><th>Shares</th><th>Entry</th><th>Price</th><th>Value</th><th>P&amp;L</th><th className="left">Against its band</th><th></th></tr></thead>
            <tbody>{data.plays.map((p) => (
              <tr key={p.play_id} data-testid="play-row" data-symbol={p.symbol}>
                <td><span className="sym">{p.symbol}</span>{p.note ? <div className="small muted">{p.note}</div> : null}</td>
                <td>{num(p.shares)}</td>
                <td>{usd(p.entry_price)}<div className="small muted">{p.entry_date}</div></td>
                <td>{usd(p.price)}<div><LiveBadge quote={p.quote} /></div></td>
                <td>{usd(p.value)}</td>
                <td className={(p.pnl ?? 0) >= 0 ? "pos" : "neg"} data-testid="play-pnl">{usd(p.pnl)}<div className="small">{pct(p.pnl_pct)}</div></td>
                <td className="left" style={{ minWidth: 200 }}><BandCell play={p} /></td>
                <td><button className="ghost" onClick={() => edit(p)}>Edit</button> <button className="danger" data-testid="play-remove" onClick={() => remove(p)}>Remove</button></td>
              </tr>))}
            </tbody>
          </table>
        ) : <p className="muted">No plays yet. Add the positions you hold to follow their profit and loss against the advice.</p>}
        {data ? <FreshnessLine freshness={data.freshness} /> : null}
      </div>
      <Alerts version={version} />
      <Rebalance />
    </>
  );
}
