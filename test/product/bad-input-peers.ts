// The peer rows of the bad-input table (docs/bad-input.md): a rank started as torchrun or srun
// would start it, whose rendezvous store lies (never answers, answers garbage, announces a 2^62-byte
// value) or is another service's port. Each must fail in one line within OLMO_STORE_TIMEOUT_S, and
// OLMO_STORE_TIMEOUT_S itself must be a duration a timer can wait. The lying stores run in the test
// process (startPeerStores) for as long as the rows run.
import type { Socket } from "bun";
import { Q } from "../../src/parallel/store/torch-store.ts";
import { startAgentStore } from "../parallel/fixtures/torch-agent-store.ts";
import type { BadInputRow } from "./bad-input-row.ts";

type Kind = "silentAgent" | "garbageAgent" | "hugeAgent" | "otherService" | "silentStore";
const ports: Partial<Record<Kind, number>> = {};
const stops: (() => void)[] = [];

/** A rank of a 2-rank job, pointed at the lying store `kind` (the agent's, or olmo's own). */
function rankEnv(kind: Kind, agent: boolean, extra: Record<string, string> = {}): Record<string, string> {
  return {
    RANK: "1", WORLD_SIZE: "2", LOCAL_RANK: "1", LOCAL_WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(ports[kind]),
    OLMO_STORE_TIMEOUT_S: "1", ...(agent ? { TORCHELASTIC_USE_AGENT_STORE: "True", TORCHELASTIC_RUN_ID: "bad", TORCHELASTIC_RESTART_COUNT: "0" } : {}), ...extra,
  };
}

export function peerRows(train: (id: string) => string[]): BadInputRow[] {
  const row = (mistake: string, kind: Kind, agent: boolean, message: RegExp): BadInputRow => ({
    mistake, args: () => train(`peer-${kind}`), message,
    get env() {
      return rankEnv(kind, agent);
    },
  });
  return [
    row("torchrun agent store that never answers", "silentAgent", true, /^olmo: error: the torchrun agent's store at 127\.0\.0\.1:\d+ did not answer the PING within 1 s \(OLMO_STORE_TIMEOUT_S\)$/),
    row("torchrun agent store that answers garbage", "garbageAgent", true, /the torchrun agent's store at 127\.0\.0\.1:\d+ sent a PING reply that is not its nonce: not a torch TCPStore speaking its protocol/),
    row("torchrun agent store announcing a 2^62-byte value", "hugeAgent", true, /sent a GET reply announcing a value of 4611686018427387904 bytes \(olmo stores at most 65536\)/),
    row("rendezvous store port held by another service", "otherService", false, /the rendezvous store at 127\.0\.0\.1:\d+ sent a line that is not JSON: not olmo's store \(do MASTER_PORT \/ OLMO_STORE_PORT name another service's port\?\)/),
    row("rendezvous store that never answers", "silentStore", false, /the rendezvous store at 127\.0\.0\.1:\d+ did not answer the barrier within 2 s \(OLMO_STORE_TIMEOUT_S\); rank 0 hosts it/),
    {
      mistake: "OLMO_STORE_TIMEOUT_S beyond a timer's reach", args: () => train("peer-timeout"),
      get env() {
        return rankEnv("silentStore", false, { OLMO_STORE_TIMEOUT_S: "1e9" });
      },
      message: /OLMO_STORE_TIMEOUT_S="1e9" must be a positive number of seconds \(at most 2147483\.647\)/,
    },
  ];
}

/** Start the lying stores the rows point at; returns their stop. */
export function startPeerStores(): () => void {
  const agent = (kind: Kind, lie: Parameters<typeof startAgentStore>[1], keys: string[] = []) => {
    const a = startAgentStore(0, lie);
    for (const k of keys) a.keys.set(k, new TextEncoder().encode("1"));
    ports[kind] = a.port;
    stops.push(a.stop);
  };
  agent("silentAgent", () => null);
  agent("garbageAgent", (q) => (q === Q.PING ? Uint8Array.of(0, 0, 0, 0) : undefined));
  // rank 0 "arrived" and "published" the shared-memory segment's name; its GET announces 2^62 bytes
  const prefix = "olmo/bad/attempt0/";
  agent("hugeAgent", (q) => {
    if (q !== Q.GET) return undefined;
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, 2n ** 62n, true);
    return b;
  }, [`${prefix}barrier/olmo/init/0/done`, `${prefix}olmo/shm-comm/path`]);
  const raw = (kind: Kind, reply: ((s: Socket<undefined>) => void) | null) => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (s) => reply?.(s) } });
    ports[kind] = l.port;
    stops.push(() => l.stop(true));
  };
  raw("otherService", (s) => s.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
  raw("silentStore", null);
  return () => {
    for (const f of stops.splice(0)) f();
  };
}
