// A run's TensorBoard event file, so that `tensorboard --logdir runs/` shows every run: the step and
// eval scalars (tags in tensorboard-tags.ts) and the resolved config as a text summary; the format
// is tensorboard-format.ts.
//  - Each start of a run writes its own file, opened only when the first event is due: a finished
//    run started again (nothing to train) writes none.
//  - A (re)start: the file's second event is SessionLog START at the first step this attempt
//    trains. TensorBoard's loader purges, on every START after a run's first, whatever it holds at
//    or past that step (tensorboard 2.21.0, tensorboard/backend/event_processing/
//    plugin_event_accumulator.py _CheckForRestartAndMaybePurge): a TensorBoard that is watching
//    drops the abandoned steps. Readers that open the folder later never see them: before this
//    attempt's file is opened, the older files are cut to the resumed step (tensorboard-history.ts).
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { EVENT_FILE_PREFIX, fileVersionEvent, scalarEvent, sessionStartEvent, textEvent, tfRecord } from "./tensorboard-format.ts";
import { cutEventFiles } from "./tensorboard-history.ts";

export interface TensorBoardStart {
  /** the step the run resumed after (0 for a fresh start): what earlier attempts wrote past it is superseded */
  resumedAfter: number;
  /** the resolved config, shown as a text summary */
  config?: unknown;
  /** called with the name of each older event file that was cut to the resumed step */
  onCut?: (file: string, droppedEvents: number) => void;
}

export class TensorBoardWriter {
  private fd = -1;
  private file: string | null = null;

  constructor(readonly dir: string, private readonly start: TensorBoardStart) {}

  /** this attempt's event file, once an event has been written */
  get path(): string | null {
    return this.file;
  }

  private open(wallTimeS: number): void {
    for (const cut of cutEventFiles(this.dir, this.start.resumedAfter)) this.start.onCut?.(cut.file, cut.droppedEvents);
    // <time>.<host>.<pid>.<n>: n counts up past names taken (a restart within the same second and process)
    const stem = join(this.dir, `${EVENT_FILE_PREFIX}${Math.floor(wallTimeS)}.${hostname()}.${process.pid}.`);
    let n = 0;
    while (existsSync(stem + n)) n++;
    this.file = stem + n;
    this.fd = openSync(this.file, "a");
    const first = this.start.resumedAfter + 1;
    this.write(fileVersionEvent(wallTimeS));
    this.write(sessionStartEvent(first, wallTimeS));
    if (this.start.config !== undefined) {
      this.write(textEvent(first, wallTimeS, "config", "```json\n" + JSON.stringify(this.start.config, null, 2) + "\n```"));
    }
  }

  private write(event: Uint8Array): void {
    writeSync(this.fd, tfRecord(event));
  }

  /** One event holding the step's scalars (non-finite values are left out). */
  scalars(step: number, values: [tag: string, value: number][], wallTimeS = Date.now() / 1000): void {
    const finite = values.filter(([, v]) => Number.isFinite(v));
    if (finite.length === 0) return;
    if (this.fd < 0) this.open(wallTimeS);
    this.write(scalarEvent(step, wallTimeS, finite));
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
