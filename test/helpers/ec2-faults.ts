/**
 * Per-test faults for a real EC2 client (the test EC2, or any EC2-compatible endpoint), added as
 * SDK middleware, so the library's real code path runs unchanged. EC2's own behaviours (slow
 * transitions, late attachments, throttling bursts ...) are knobs of the test EC2 instead
 * (test/ec2/patches/); this is for one call of one test failing in a chosen way.
 *
 * API: `const faults = installEc2Faults(client)`, then
 * - `faults.calls` / `faults.names()` / `faults.inputsOf(name)`: every command sent, in order, with
 *   its input (faulted and emulated calls included): assert request shapes moto ignores.
 * - `faults.fail(command, { code, message?, status? }, { times?, when? })`: the next `times` calls
 *   (matching `when(input)`) fail with an SDK-shaped error, without reaching the endpoint.
 * - `faults.throttle(command, times)`: `RequestLimitExceeded` (HTTP 503) `times` times, as if the
 *   SDK's own retries had run out.
 * - `faults.remove()`: takes the middleware off the client.
 */
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';

/** One recorded command. */
export interface RecordedCall {
  /** Operation name, e.g. `CreateVolume`. */
  readonly name: string;
  /** Its input. */
  readonly input: Record<string, unknown>;
  /** How it went: sent to the endpoint, or failed by a fault. */
  readonly outcome: 'sent' | 'faulted';
}

/** An injected error. */
export interface FaultError {
  /** AWS error code, e.g. `InvalidParameterValue`. */
  readonly code: string;
  /** Its message. */
  readonly message?: string;
  /** HTTP status. @defaultValue 400 */
  readonly status?: number;
}

/** The handle of {@link installEc2Faults}. */
export interface Ec2Faults {
  readonly calls: readonly RecordedCall[];
  names(): string[];
  inputsOf(name: string): Record<string, unknown>[];
  fail(
    command: string,
    error: FaultError,
    options?: { readonly times?: number; readonly when?: (input: Record<string, unknown>) => boolean },
  ): void;
  throttle(command: string, times: number): void;
  remove(): void;
}

interface Rule {
  command: string;
  error: FaultError;
  left: number;
  when: ((input: Record<string, unknown>) => boolean) | undefined;
}

let installed = 0;

/** Adds the fault middleware to `client` (several clients may each get their own). */
export function installEc2Faults(client: EC2Client): Ec2Faults {
  const name = `ami-chroot-test-faults-${++installed}`;
  const calls: RecordedCall[] = [];
  const rules: Rule[] = [];

  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName ?? '').replace(/Command$/, '');
      const input = { ...(args.input as Record<string, unknown>) };
      const rule = rules.find((r) => r.command === command && r.left > 0 && (r.when === undefined || r.when(input)));
      if (rule) {
        rule.left--;
        calls.push({ name: command, input, outcome: 'faulted' });
        const status = rule.error.status ?? 400;
        throw new EC2ServiceException({
          name: rule.error.code,
          message: rule.error.message ?? `${rule.error.code} (injected by ec2-faults)`,
          $fault: status >= 500 ? 'server' : 'client',
          $metadata: { httpStatusCode: status, requestId: 'injected' },
        });
      }
      calls.push({ name: command, input, outcome: 'sent' });
      return next(args);
    },
    { step: 'initialize', name, priority: 'high' },
  );

  return {
    calls,
    names: () => calls.map((c) => c.name),
    inputsOf: (command) => calls.filter((c) => c.name === command).map((c) => c.input),
    fail: (command, error, options = {}) => {
      rules.push({ command, error, left: options.times ?? 1, when: options.when });
    },
    throttle: (command, times) => {
      rules.push({
        command,
        error: { code: 'RequestLimitExceeded', message: 'Request limit exceeded.', status: 503 },
        left: times,
        when: undefined,
      });
    },
    remove: () => {
      client.middlewareStack.remove(name);
    },
  };
}
