/**
 * Shell quoting of substituted values in shell-command template options.
 */
import type { Node } from './ast.js';

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes a value for a POSIX shell: single quotes, with each `'` written as `'\''`. Values made
 * only of safe characters (`A-Za-z0-9_@%+=:,./-`) are returned as they are; the empty string is `''`.
 *
 * @example
 * ```ts
 * import { defineConfig, shellQuote } from 'ami-chroot';
 *
 * shellQuote("it's $HOME"); // => 'it'\''s $HOME'
 * shellQuote('/dev/nvme1n1'); // => /dev/nvme1n1 (only safe characters: left bare)
 *
 * // A function template in a shell-command option gets raw values: it quotes them itself.
 * export default defineConfig({
 *   sourceAmi: 'ami-0123456789abcdef0',
 *   amiName: 'web {{timestamp}}',
 *   postMountCommands: [(data) => `cp ./motd ${shellQuote(`${data.MountPath}/etc/motd`)}`],
 * });
 * ```
 * @public
 */
export function shellQuote(value: string): string {
  if (SHELL_SAFE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Where a substituted value stands in a shell command. */
export type ShellContext = 'bare' | 'single' | 'double';

/** The shell quoting context at each action, scanning the literal text around them. */
export function shellContexts(nodes: readonly Node[]): ShellContext[] {
  const contexts: ShellContext[] = [];
  let state: ShellContext = 'bare';
  for (const node of nodes) {
    if (node.kind === 'action') {
      contexts.push(state);
      continue;
    }
    const text = node.value;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (state === 'bare') {
        if (c === '\\') i++;
        else if (c === "'") state = 'single';
        else if (c === '"') state = 'double';
      } else if (state === 'single') {
        if (c === "'") state = 'bare';
      } else if (c === '\\') i++;
      else if (c === '"') state = 'bare';
    }
  }
  return contexts;
}

/** Escapes a value for its context; `verbatim` leaves `{{.Command}}` unquoted where bare. */
export function escapeFor(context: ShellContext, value: string, verbatim: boolean): string {
  if (context === 'single') return value.replaceAll("'", `'\\''`);
  if (context === 'double') return value.replace(/[\\"$`]/g, '\\$&');
  return verbatim ? value : shellQuote(value);
}
