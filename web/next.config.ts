import type { NextConfig } from "next";

// Exported as static files and served by the FastAPI app at "/" (one process, one port).
const nextConfig: NextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
};

export default nextConfig;
