import { vi } from "vitest";

import type { ServerSupabaseClient } from "@/server/supabase";

export const TENANT_A = "8f14e45f-ceea-467a-9575-6d1c1c4f5b2a";
export const TENANT_B = "c9f0f895-fb98-4b91-9c36-0e0e5b1f2d3c";
export const PROJECT_ID = "3c59dc04-8e89-4bbd-8a41-5f1e7c2d9b10";
export const USER = {
  id: "45c48cce-2e2d-4fbd-a1f6-0a4b4f3b5c6d",
  email: "ada@acme.test",
  aud: "authenticated",
  app_metadata: {},
  user_metadata: {},
  created_at: "2025-01-01T00:00:00.000Z",
};

export type FakeResult = {
  data: unknown;
  error: { message: string; code?: string } | null;
  count?: number | null;
};

type Call = { method: string; args: unknown[] };

/**
 * Stands in for a PostgREST query builder: records every chained call and
 * resolves, when awaited, to the result the test queued for the table.
 */
export class FakeQuery implements PromiseLike<FakeResult> {
  readonly calls: Call[] = [];

  constructor(
    readonly table: string,
    private readonly result: FakeResult,
  ) {}

  private record(method: string, args: unknown[]): this {
    this.calls.push({ method, args });
    return this;
  }

  select(...args: unknown[]) {
    return this.record("select", args);
  }
  insert(...args: unknown[]) {
    return this.record("insert", args);
  }
  update(...args: unknown[]) {
    return this.record("update", args);
  }
  delete(...args: unknown[]) {
    return this.record("delete", args);
  }
  eq(...args: unknown[]) {
    return this.record("eq", args);
  }
  order(...args: unknown[]) {
    return this.record("order", args);
  }
  range(...args: unknown[]) {
    return this.record("range", args);
  }
  single() {
    return this.record("single", []);
  }
  maybeSingle() {
    return this.record("maybeSingle", []);
  }

  /** The `.eq(column, value)` filters of this query, by column. */
  get filters(): Record<string, unknown> {
    return Object.fromEntries(
      this.calls.filter((call) => call.method === "eq").map((call) => [call.args[0], call.args[1]]),
    );
  }

  /** The arguments of the first call of `method`, or undefined. */
  argsOf(method: string): unknown[] | undefined {
    return this.calls.find((call) => call.method === method)?.args;
  }

  then<R1 = FakeResult, R2 = never>(
    onfulfilled?: ((value: FakeResult) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): PromiseLike<R1 | R2> {
    return Promise.resolve(this.result).then(onfulfilled, onrejected);
  }
}

export type FakeSupabaseOptions = {
  /** The user the token belongs to; `null` makes `auth.getUser` fail. */
  user?: typeof USER | null;
  /** Rows of `tenant_members` for the user. Default: member of TENANT_A. */
  memberships?: Array<{ tenant_id: string; role: string }>;
  /** Results of successive queries, per table. Default: no rows. */
  results?: Record<string, FakeResult[]>;
};

/** A fake of the caller-scoped Supabase client returned by `createServerClient`. */
export function createFakeSupabase(options: FakeSupabaseOptions = {}) {
  const user = options.user === undefined ? USER : options.user;
  const memberships = options.memberships ?? [{ tenant_id: TENANT_A, role: "member" }];
  const queues = new Map(Object.entries(options.results ?? {}).map(([table, results]) => [table, [...results]]));
  const queries: FakeQuery[] = [];

  const client = {
    auth: {
      getUser: vi.fn(async () =>
        user
          ? { data: { user }, error: null }
          : { data: { user: null }, error: { name: "AuthApiError", message: "invalid JWT", status: 401 } },
      ),
    },
    from: vi.fn((table: string) => {
      const result: FakeResult =
        table === "tenant_members"
          ? { data: memberships, error: null }
          : (queues.get(table)?.shift() ?? { data: [], error: null, count: 0 });
      const query = new FakeQuery(table, result);
      queries.push(query);
      return query;
    }),
  };

  return {
    client: client as unknown as ServerSupabaseClient,
    auth: client.auth,
    /** Every query made, in order. */
    queries,
    queriesOf: (table: string) => queries.filter((query) => query.table === table),
  };
}
