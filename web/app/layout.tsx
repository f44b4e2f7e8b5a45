import type { Metadata } from "next";
import "./globals.css";
import Nav from "@/components/Nav";

export const metadata: Metadata = {
  title: "quant_assets",
  description: "Ranked fractional-Kelly (½) trades with P10–P90 value bands, the decision backtest, your plays and ticker comparison.",
};

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body>
        <Nav />
        <main>{children}</main>
        <footer>Forecasts are probabilistic and can be wrong. Bands are P10–P90: one outcome in five falls outside them.</footer>
      </body>
    </html>
  );
}
