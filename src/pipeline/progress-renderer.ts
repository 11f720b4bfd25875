/**
 * A console display of a build's progress events: one line per phase, a live status line on a
 * terminal (waits, snapshot percent, region copies), plain lines otherwise, a timings table.
 */
import type { Phase } from '../errors.js';
import type { Logger, ProgressEvent, ProgressListener, ResourceKind } from '../types.js';

/**
 * Where a {@link ProgressRenderer} writes: `process.stdout`, `process.stderr`, or any object with
 * `write`.
 * @public
 */
export interface ProgressOutput {
  /** Writes text as it is (the renderer adds the newlines). */
  write(text: string): unknown;
  /** A terminal: the status line is redrawn in place. */
  readonly isTTY?: boolean;
  /** Terminal width; the status line is cut to fit. */
  readonly columns?: number;
}

/**
 * Options of {@link createProgressRenderer}.
 * @public
 */
export interface ProgressRendererOptions {
  /** Where to write. @defaultValue `process.stdout` */
  readonly output?: ProgressOutput;
  /** Redraw a live status line in place. @defaultValue `output.isTTY` */
  readonly live?: boolean;
  /** ANSI colours. @defaultValue `live`, unless the `NO_COLOR` environment variable is set */
  readonly color?: boolean;
  /** Print the output lines of commands (host and chroot). @defaultValue false */
  readonly commandOutput?: boolean;
}

/**
 * A console display of progress events: pass {@link ProgressRenderer.onProgress} (and
 * {@link ProgressRenderer.logger}) to a build, call {@link ProgressRenderer.finish} after it.
 * @public
 */
export interface ProgressRenderer {
  /** The listener to pass as `onProgress`. */
  readonly onProgress: ProgressListener;
  /** A logger whose warnings and errors print between the phase lines. */
  readonly logger: Logger;
  /** Prints a line between the phase lines. */
  note(message: string): void;
  /** Clears the status line and prints the timings table of the phases seen, with `totalMs` if given. */
  finish(totalMs?: number): void;
}

const COUNTED_KINDS: ReadonlySet<ResourceKind> = new Set(['mount', 'file', 'service-guard']);

const ANSI = { bold: '1', dim: '2', red: '31', green: '32' } as const;

/** `1.23 s` from 1 s on, `870 ms` below. */
function duration(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

/** `+volume vol-1, +mount ×6` from a list of changes. */
function summarize(changes: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const change of changes) counts.set(change, (counts.get(change) ?? 0) + 1);
  return [...counts].map(([change, n]) => (n > 1 ? `${change} ×${n}` : change)).join(', ');
}

/**
 * Creates a console display for a build's progress: each phase as a line with ✓ or ✗, its duration
 * and what it created and removed; waits, snapshot percent and region copies on a live status line
 * on a terminal, as plain lines otherwise; cleanup failures; and a timings table at the end.
 *
 * @example
 * ```ts
 * import { buildAmi, createProgressRenderer } from 'ami-chroot';
 *
 * const progress = createProgressRenderer();
 * const result = await buildAmi(
 *   { sourceAmi: 'ami-0123456789abcdef0', amiName: 'web {{timestamp}}' },
 *   async (chroot) => {
 *     await chroot.sh('apt-get update && apt-get install -y nginx');
 *   },
 *   { onProgress: progress.onProgress, logger: progress.logger },
 * );
 * progress.finish(result.durationMs);
 * ```
 * @public
 */
export function createProgressRenderer(options: ProgressRendererOptions = {}): ProgressRenderer {
  const output = options.output ?? process.stdout;
  const live = options.live ?? output.isTTY === true;
  const color = options.color ?? (live && process.env['NO_COLOR'] === undefined);
  const paint = (style: keyof typeof ANSI, text: string): string =>
    color ? `\x1b[${ANSI[style]}m${text}\x1b[0m` : text;

  let phase: Phase | undefined;
  let changes: string[] = [];
  let statusShown = false;
  const copies = new Map<string, string>();
  const timings: [Phase, number][] = [];
  // Plain mode prints snapshot progress at each quarter, not on every percent.
  let lastQuarter = -1;

  const line = (text: string): void => {
    if (statusShown) output.write('\r\x1b[2K');
    statusShown = false;
    output.write(`${text}\n`);
  };
  const status = (text: string): void => {
    if (!live) {
      line(`    ${paint('dim', text)}`);
      return;
    }
    const width = (output.columns ?? 100) - 1;
    output.write(`\r\x1b[2K${`  … ${(phase ?? '').padEnd(10)} ${text}`.slice(0, width)}`);
    statusShown = true;
  };
  const copiesText = (): string => [...copies].map(([region, state]) => `${region} ${state}`).join(', ');

  const onProgress: ProgressListener = (event: ProgressEvent) => {
    switch (event.type) {
      case 'phase-start':
        phase = event.phase;
        changes = [];
        break;
      case 'phase-end': {
        const mark = event.ok ? paint('green', '✓') : paint('red', '✗');
        timings.push([event.phase, event.durationMs]);
        const summary = summarize(changes);
        line(
          `  ${mark} ${event.phase.padEnd(10)} ${duration(event.durationMs).padStart(8)}${summary ? `  ${paint('dim', summary)}` : ''}`,
        );
        phase = undefined;
        changes = [];
        break;
      }
      case 'resource': {
        const sign = event.action === 'created' ? '+' : event.action === 'removed' ? '-' : '=';
        // Mounts and files come in dozens: counted by kind; the rest by id.
        const change = COUNTED_KINDS.has(event.kind) ? `${sign}${event.kind}` : `${sign}${event.kind} ${event.id}`;
        if (phase) changes.push(change);
        else line(`    ${paint('dim', change)}`);
        break;
      }
      case 'wait':
        if (live || event.polls <= 1) status(`waiting for ${event.waitingFor}: ${event.state}`);
        break;
      case 'snapshot-progress': {
        const quarter = Math.floor(event.percent / 25);
        if (live || quarter !== lastQuarter) status(`snapshot ${event.snapshotId} ${event.percent}%`);
        lastQuarter = quarter;
        break;
      }
      case 'copy':
        copies.set(event.region, event.imageId ? `${event.state} ${event.imageId}` : event.state);
        status(`copies: ${copiesText()}`);
        break;
      case 'blocks':
        if (live || event.done === event.total)
          status(`${event.direction} ${event.snapshotId}: ${event.done}/${event.total} blocks`);
        break;
      case 'cleanup':
        if (event.status === 'failed')
          line(`    ${paint('red', `cleanup failed: ${event.step}: ${event.error ?? ''}`)}`);
        break;
      case 'output':
        if (options.commandOutput) line(`    ${paint('dim', `${event.command}: ${event.line}`)}`);
        break;
    }
  };

  const note = (message: string): void => line(`    ${message}`);
  return {
    onProgress,
    note,
    // Debug and info lines would drown the phase lines; the events already say what happens.
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (message) => note(`warning: ${message}`),
      error: (message) => note(paint('red', message)),
    },
    finish(totalMs) {
      if (statusShown) output.write('\r\x1b[2K');
      statusShown = false;
      if (timings.length === 0) return;
      const longest = Math.max(...timings.map(([, ms]) => ms), 1);
      line(`\n  ${paint('bold', 'Timings')}`);
      for (const [name, ms] of timings) {
        const bar = '█'.repeat(Math.max(1, Math.round((ms / longest) * 30)));
        line(`    ${name.padEnd(14)} ${duration(ms).padStart(8)}  ${paint('dim', bar)}`);
      }
      if (totalMs !== undefined) line(`    ${'total'.padEnd(14)} ${duration(totalMs).padStart(8)}`);
    },
  };
}
