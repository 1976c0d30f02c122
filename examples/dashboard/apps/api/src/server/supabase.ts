import { createClient } from "@supabase/supabase-js";

import type { Database } from "./database.types";

function requireEnv(name: "SUPABASE_URL" | "SUPABASE_ANON_KEY"): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set (see apps/api/.env.example)`);
  }
  return value;
}

/**
 * A Supabase client that acts as the caller: every PostgREST request carries
 * the caller's access token, so row level security applies to all queries.
 * Only the anon key is used here; the service role key never reaches the API.
 */
export function createServerClient(accessToken: string) {
  return createClient<Database>(requireEnv("SUPABASE_URL"), requireEnv("SUPABASE_ANON_KEY"), {
    global: {
      headers: { Authorization: `Bearer ${accessToken}` },
    },
    auth: {
      persistSession: false,
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
  });
}

export type ServerSupabaseClient = ReturnType<typeof createServerClient>;
