/**
 * Faults and slow state transitions for a real EC2 client (moto, or any EC2-compatible endpoint),
 * added as SDK middleware, so the library's real code path runs unchanged.
 *
 * API: `const faults = installEc2Faults(client)`, then
 * - `faults.calls` / `faults.names()` / `faults.inputsOf(name)`: every command sent, in order, with
 *   its input (faulted and emulated calls included): assert request shapes moto ignores.
 * - `faults.fail(command, { code, message?, status? }, { times?, when? })`: the next `times` calls
 *   (matching `when(input)`) fail with an SDK-shaped error, without reaching the endpoint.
 * - `faults.throttle(command, times)`: `RequestLimitExceeded` (HTTP 503) `times` times, as if the
 *   SDK's own retries had run out.
 * - `faults.respond(command, output)`: answer a command the endpoint lacks (moto has no
 *   EnableImageDeprecation) with `output`; the call is still recorded.
 * - `faults.slowVolume({ state: 'creating', forMs })`: DescribeVolumes reports `creating` for
 *   `forMs` after a volume is first described; `{ state: 'attaching', forMs }` reports new
 *   attachments as `attaching`.
 * - `faults.slowSnapshot({ stuckMs })`: DescribeSnapshots reports `pending` at 0 % for `stuckMs`
 *   after a snapshot is first described, then the real answer (a jump to 100 %).
 * - `faults.slowImage({ forMs })`: DescribeImages reports `pending` for `forMs` after an image is
 *   first described.
 * - `faults.remove()`: takes the middleware off the client.
 * Times are real (Date.now): keep them to a few seconds.
 */
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import type { EC2Client, Image, Snapshot, Volume } from '@aws-sdk/client-ec2';

/** One recorded command. */
export interface RecordedCall {
  /** Operation name, e.g. `CreateVolume`. */
  readonly name: string;
  /** Its input. */
  readonly input: Record<string, unknown>;
  /** How it went: sent to the endpoint, failed by a fault, or answered by `respond`. */
  readonly outcome: 'sent' | 'faulted' | 'emulated';
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
  respond(
    command: string,
    output: Record<string, unknown> | ((input: Record<string, unknown>) => Record<string, unknown>),
  ): void;
  slowVolume(options: {
    readonly state: 'creating' | 'attaching';
    readonly forMs: number;
    readonly volumeId?: string;
  }): void;
  slowSnapshot(options: { readonly stuckMs: number; readonly snapshotId?: string }): void;
  slowImage(options: { readonly forMs: number; readonly imageId?: string }): void;
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
  const responders = new Map<string, (input: Record<string, unknown>) => Record<string, unknown>>();
  const volumeRules: { state: 'creating' | 'attaching'; forMs: number; volumeId: string | undefined }[] = [];
  const snapshotRules: { stuckMs: number; snapshotId: string | undefined }[] = [];
  const imageRules: { forMs: number; imageId: string | undefined }[] = [];
  const firstSeen = new Map<string, number>();
  const since = (key: string): number => {
    const now = Date.now();
    if (!firstSeen.has(key)) firstSeen.set(key, now);
    return now - firstSeen.get(key)!;
  };

  const rewriteVolumes = (volumes: Volume[] | undefined): void => {
    for (const v of volumes ?? []) {
      for (const rule of volumeRules) {
        if (rule.volumeId && rule.volumeId !== v.VolumeId) continue;
        if (rule.state === 'creating' && since(`vol-create:${v.VolumeId}`) < rule.forMs) {
          v.State = 'creating';
          v.Attachments = [];
        }
        if (rule.state === 'attaching') {
          for (const a of v.Attachments ?? []) {
            if (a.State === 'attached' && since(`vol-attach:${v.VolumeId}:${a.InstanceId}:${a.Device}`) < rule.forMs)
              a.State = 'attaching';
          }
        }
      }
    }
  };
  const rewriteSnapshots = (snapshots: Snapshot[] | undefined): void => {
    for (const s of snapshots ?? []) {
      for (const rule of snapshotRules) {
        if (rule.snapshotId && rule.snapshotId !== s.SnapshotId) continue;
        if (since(`snap:${s.SnapshotId}`) < rule.stuckMs) {
          s.State = 'pending';
          s.Progress = '0%';
        }
      }
    }
  };
  const rewriteImages = (images: Image[] | undefined): void => {
    for (const i of images ?? []) {
      for (const rule of imageRules) {
        if (rule.imageId && rule.imageId !== i.ImageId) continue;
        if (since(`image:${i.ImageId}`) < rule.forMs) i.State = 'pending';
      }
    }
  };

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
      const responder = responders.get(command);
      if (responder) {
        calls.push({ name: command, input, outcome: 'emulated' });
        return {
          output: { $metadata: { httpStatusCode: 200, requestId: 'emulated' }, ...responder(input) },
          response: {},
        };
      }
      calls.push({ name: command, input, outcome: 'sent' });
      const result = await next(args);
      const output = result.output as { Volumes?: Volume[]; Snapshots?: Snapshot[]; Images?: Image[] };
      if (command === 'DescribeVolumes') rewriteVolumes(output.Volumes);
      if (command === 'DescribeSnapshots') rewriteSnapshots(output.Snapshots);
      if (command === 'DescribeImages') rewriteImages(output.Images);
      return result;
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
    respond: (command, output) => {
      responders.set(command, typeof output === 'function' ? output : () => output);
    },
    slowVolume: (options) => {
      volumeRules.push({ state: options.state, forMs: options.forMs, volumeId: options.volumeId });
    },
    slowSnapshot: (options) => {
      snapshotRules.push({ stuckMs: options.stuckMs, snapshotId: options.snapshotId });
    },
    slowImage: (options) => {
      imageRules.push({ forMs: options.forMs, imageId: options.imageId });
    },
    remove: () => {
      client.middlewareStack.remove(name);
    },
  };
}
