/**
 * Progress of long model-side tasks (Hub downloads, reading weights), reported in bytes. The model
 * code only reports; the CLI decides how it looks (src/cli/progress.ts: a bar on a terminal,
 * periodic lines otherwise).
 */

export interface ProgressTask {
  /** Bytes done so far (absolute, may go back after a restart) and what is being worked on now. */
  update(doneBytes: number, detail?: string): void;
  /** The task is over; `summary` is shown in its place (e.g. "downloaded 988 MB in 41 s"). */
  end(summary?: string): void;
}

export interface ProgressReporter {
  /**
   * A task of `totalBytes` starts with `doneBytes` already done (resumed downloads): speeds count only
   * what is done from now on.
   */
  begin(label: string, totalBytes: number, doneBytes?: number): ProgressTask;
}

/** Reports nothing. */
export const NO_PROGRESS: ProgressReporter = {
  begin: () => ({ update: () => {}, end: () => {} }),
};
