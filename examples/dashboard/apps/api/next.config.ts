import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  // `@dashboard/contracts` ships TypeScript sources; Next compiles them with the app.
  transpilePackages: ["@dashboard/contracts"],
  poweredByHeader: false,
  // Lint runs on its own in CI (`pnpm --filter api lint`), with the repository's flat config.
  eslint: { ignoreDuringBuilds: true },
};

export default nextConfig;
