/**
 * What the CLI prints: a live status line on a terminal, plain lines in CI or with `--plain`,
 * JSON lines with `--json`. Every text passes through `redact` first.
 */
import type { Logger, ProgressEvent } from '../index.js';

/** The CLI's printer: progress events, log lines, and its own messages. */
export interface Output {
  readonly logger: Logger;
  event(build: string, e: ProgressEvent): void;
  message(text: string, data?: Record<string, unknown>): void;
  error(text: string, data?: Record<string, unknown>): void;
  /** Stops the status line. */
  close(): void;
}

/** Replaces every secret value with `<sensitive>`. */
export function redactor(secrets: readonly string[]): (text: string) => string {
  const list = [...new Set(secrets.filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
  return (text) => list.reduce((t, s) => t.split(s).join('<sensitive>'), text);
}

function describe(e: ProgressEvent): string | undefined {
  switch (e.type) {
    case 'phase-start':
      return `${e.phase}...`;
    case 'phase-end':
      return `${e.phase} ${e.ok ? 'done' : 'failed'} (${(e.durationMs / 1000).toFixed(1)}s)`;
    case 'resource':
      return `${e.action} ${e.kind} ${e.id}${e.region ? ` (${e.region})` : ''}`;
    case 'wait':
      return `waiting for ${e.waitingFor} ${e.id}: ${e.state}`;
    case 'snapshot-progress':
      return `snapshot ${e.snapshotId}: ${e.percent}%`;
    case 'copy':
      return `copy to ${e.region}: ${e.state}${e.imageId ? ` ${e.imageId}` : ''}`;
    case 'cleanup':
      return `cleanup ${e.step}: ${e.status}${e.error ? ` (${e.error})` : ''}`;
    case 'blocks':
      return `${e.direction} ${e.snapshotId}: ${e.done}/${e.total} blocks`;
    case 'output':
      return e.line;
  }
}

/** Creates the printer for this run. */
export function createOutput(mode: 'tty' | 'plain' | 'json', redact: (text: string) => string): Output {
  const started = Date.now();
  let status = '';
  let timer: NodeJS.Timeout | undefined;
  const clear = () => {
    if (mode === 'tty' && status) process.stderr.write('\r\x1b[K');
  };
  const draw = () => {
    if (mode === 'tty' && status)
      process.stderr.write(
        `\r\x1b[K${status} [${Math.round((Date.now() - started) / 1000)}s]`.slice(0, process.stderr.columns || 120),
      );
  };
  if (mode === 'tty') timer = setInterval(draw, 1000).unref();
  const line = (stream: NodeJS.WriteStream, text: string) => {
    clear();
    stream.write(`${redact(text)}\n`);
    draw();
  };
  const json = (record: Record<string, unknown>) =>
    process.stdout.write(`${redact(JSON.stringify({ time: new Date().toISOString(), ...record }))}\n`);
  const log =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      if (level === 'debug' && !process.env['AMI_CHROOT_DEBUG']) return;
      const text = args
        .map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a)))
        .join(' ');
      if (mode === 'json') process.stderr.write(`${redact(JSON.stringify({ type: 'log', level, message: text }))}\n`);
      else line(process.stderr, level === 'warn' || level === 'error' ? `${level}: ${text}` : text);
    };
  return {
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    event(build, e) {
      if (mode === 'json') return json({ build, ...e });
      const text = describe(e);
      if (!text) return;
      if (e.type === 'output') return line(process.stderr, `    ${text}`);
      if (mode === 'tty' && (e.type === 'wait' || e.type === 'snapshot-progress' || e.type === 'phase-start')) {
        status = `${build}: ${text}`;
        draw();
        return;
      }
      line(process.stderr, `${build}: ${text}`);
    },
    message(text, data) {
      if (mode === 'json') json({ type: 'message', message: text, ...data });
      else line(process.stdout, text);
    },
    error(text, data) {
      if (mode === 'json') json({ type: 'error', message: text, ...data });
      else line(process.stderr, text);
    },
    close() {
      if (timer) clearInterval(timer);
      clear();
      status = '';
    },
  };
}
