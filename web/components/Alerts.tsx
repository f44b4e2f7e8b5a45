"use client";
// Alerts after the latest advice: held positions whose price left their P10-P90 band, weights beyond the tolerance.
import { useEffect, useState } from "react";
import { api, AlertsResponse } from "@/components/api";

export default function Alerts({ version }: { version: number }) {
  const [data, setData] = useState<AlertsResponse | null>(null);
  useEffect(() => { api<AlertsResponse>("/api/alerts").then(setData).catch(() => setData(null)); }, [version]);
  if (!data || !data.alerts.length) return null;
  return (
    <div className="card" data-testid="alerts">
      <h2>Alerts</h2>
      <ul>{data.alerts.map((a) => (
        <li key={`${a.kind}-${a.symbol}`} data-testid="alert" data-kind={a.kind} data-symbol={a.symbol}>{a.message}</li>))}
      </ul>
    </div>
  );
}
