// A child process spoken to in JSON lines (one request, one reply): the PyTorch anchors run as
// servers so that their timings can interleave with ours (bench/interleave.ts).
import type { Subprocess } from "bun";

export class LineServer {
  private readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private readonly reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> };
  private buf = "";
  private readonly decoder = new TextDecoder();

  constructor(cmd: string[], readonly what: string) {
    this.proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    this.reader = this.proc.stdout.getReader();
  }

  /** the next line the child prints; its stderr's tail in the error when it exits instead */
  async readLine(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.reader.read();
      if (done) {
        const err = (await new Response(this.proc.stderr).text()).trim().split("\n").slice(-3).join(" | ");
        throw new Error(`${this.what} exited (${await this.proc.exited}): ${err || "no message"}`);
      }
      this.buf += this.decoder.decode(value, { stream: true });
    }
  }

  async request<T>(req: unknown): Promise<T> {
    this.proc.stdin.write(`${JSON.stringify(req)}\n`);
    this.proc.stdin.flush();
    const reply = JSON.parse(await this.readLine()) as T & { error?: string };
    if (reply.error) throw new Error(`${this.what}: ${reply.error}`);
    return reply;
  }

  async close(): Promise<void> {
    this.proc.stdin.end();
    await this.proc.exited;
  }
}
