"use client";
import { Area, CartesianGrid, ComposedChart, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Band, usd } from "./api";

// P10–P90 of a value at the four horizons, fanning out from today's amount, with the median as a line.
export default function FanChart({ start, bands, height = 260, compact = false }: { start: number; bands: Band[]; height?: number; compact?: boolean }) {
  const data = [
    { horizon: "today", range: [start, start], p50: start },
    ...bands.map((b) => ({ horizon: b.horizon, range: [b.p10, b.p90], p50: b.p50 })),
  ];
  return (
    <ResponsiveContainer width="100%" height={height}>
      <ComposedChart data={data} margin={{ top: 8, right: 12, left: compact ? 0 : 12, bottom: 0 }}>
        <CartesianGrid stroke="#eef2f7" vertical={false} />
        <XAxis dataKey="horizon" tick={{ fontSize: 12 }} />
        <YAxis tick={{ fontSize: 11 }} width={compact ? 56 : 80} domain={["auto", "auto"]}
          tickFormatter={(v: number) => usd(v, 0)} hide={compact && false} />
        <Tooltip formatter={(v) => (Array.isArray(v) ? `${usd(Number(v[0]))} – ${usd(Number(v[1]))}` : usd(Number(v)))} />
        <Area type="monotone" dataKey="range" name="P10–P90" stroke="#93c5fd" fill="#bfdbfe" fillOpacity={0.7} isAnimationActive={false} />
        <Line type="monotone" dataKey="p50" name="median" stroke="#1d4ed8" strokeWidth={2} dot={{ r: 3 }} isAnimationActive={false} />
      </ComposedChart>
    </ResponsiveContainer>
  );
}
