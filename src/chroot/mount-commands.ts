/**
 * Pre- and post-mount commands: Packer-style strings with `{{.Device}}` and `{{.MountPath}}`
 * (shell-quoted) or a function of the data, run through the host shell and command wrapper.
 */
import { runShell, shellQuote } from '../host/exec.js';
import type { HostCtx } from '../host/mounts.js';

/**
 * The data of `{{.Device}}` and `{{.MountPath}}` in pre/post-mount commands.
 * @public
 */
export interface MountTemplateData {
  /** The host block device given as `device` (the whole disk, e.g. `/dev/nvme1n1`). */
  readonly Device: string;
  /** The mount path (post-mount commands only; empty before the mount). */
  readonly MountPath: string;
}

/**
 * Shell commands, either as Packer-style strings (`{{.Device}}` and `{{.MountPath}}` are
 * replaced with the shell-quoted values) or as a function of the data.
 * @public
 */
export type MountCommands = readonly string[] | ((data: MountTemplateData) => readonly string[]);

function render(text: string, data: MountTemplateData): string {
  return text
    .replace(/\{\{\s*\.Device\s*\}\}/g, shellQuote(data.Device))
    .replace(/\{\{\s*\.MountPath\s*\}\}/g, shellQuote(data.MountPath));
}

/**
 * The commands to run, rendered with `data`.
 * @internal
 */
export function commandsOf(commands: MountCommands | undefined, data: MountTemplateData): readonly string[] {
  if (!commands) return [];
  return typeof commands === 'function' ? commands(data) : commands.map((c) => render(c, data));
}

/**
 * Runs commands one by one through the host shell, in `phase`.
 * @internal
 */
export async function runCommands(
  commands: readonly string[],
  phase: 'pre-mount' | 'post-mount',
  ctx: HostCtx,
): Promise<void> {
  for (const command of commands) {
    await runShell(command, {
      signal: ctx.signal,
      logger: ctx.logger,
      onProgress: ctx.emit,
      commandWrapper: ctx.commandWrapper,
      phase,
      outputLevel: 'info',
    });
  }
}
