// Where olmo keeps what it can rebuild (the embedded corpus tokenized, its held-out split): the
// user's cache folder, not the folder a command happens to run in. OLMO_CACHE wins; else
// $XDG_CACHE_HOME/olmo-bun, else ~/.cache/olmo-bun (the XDG Base Directory Specification,
// specifications.freedesktop.org/basedir-spec: an unset, empty or relative $XDG_CACHE_HOME means
// $HOME/.cache).
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

export function cacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.OLMO_CACHE) return resolve(env.OLMO_CACHE);
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".cache");
  return join(base, "olmo-bun");
}
