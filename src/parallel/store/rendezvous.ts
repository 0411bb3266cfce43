// The interface every rendezvous store offers the job's bootstrap (init.ts, the shared-memory and
// NCCL communicators, run.ts): olmo's own store (store.ts) or torchrun's agent store (torch-store.ts).

/**
 * What the job's bootstrap needs of a store: our own (StoreClient, rank 0 hosts it) or, under
 * torchrun, the elastic agent's TCPStore (torch-store.ts).
 */
export interface Rendezvous {
  readonly timeoutMs: number;
  set(key: string, value: string): Promise<void>;
  /** wait until `key` is set (at most timeoutMs), then return its value */
  get(key: string, timeoutMs?: number): Promise<string>;
  /** rank 0's `value` on every rank: rank 0 publishes it under `key`, the others wait for it */
  fromRank0(key: string, rank: number, value: string): Promise<string>;
  add(key: string, delta: number): Promise<number>;
  /** wait until all `world` ranks called barrier(name); the error on timeout names the absent ranks */
  barrier(name: string, rank: number, world: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** fromRank0 over set/get, for every Rendezvous. */
export async function publishFromRank0(s: Rendezvous, key: string, rank: number, value: string): Promise<string> {
  if (rank !== 0) return s.get(key);
  await s.set(key, value);
  return value;
}

/** "1, 3" or "1, 2, ... (12 ranks)" */
export function listRanks(ranks: number[]): string {
  return ranks.length <= 16 ? ranks.join(", ") : `${ranks.slice(0, 16).join(", ")}, ... (${ranks.length} ranks)`;
}
